/**
 * A Product as inventory sees it: the reference the gateway sent. `price` and `weight` are
 * present only when the query asked for a field that @requires them (shippingEstimate), or absent
 * when inventory itself returned the product (setStock).
 */
export interface ProductRef {
  id: string;
  /** Integer cents, owned by products. */
  price?: number | null;
  /** Grams, owned by products. */
  weight?: number | null;
}

/** Orders at or above this price (integer cents) ship free. */
export const FREE_SHIPPING_FROM = 100_000;
/** The flat part of a paid shipment, in cents. */
export const BASE_SHIPPING = 500;
/** What each started kilogram adds, in cents. */
export const PER_KILOGRAM = 50;

/**
 * Shipping cost in integer cents: free from FREE_SHIPPING_FROM, otherwise BASE_SHIPPING plus
 * PER_KILOGRAM for every started kilogram. Pure: it needs only the fields products owns, so
 * resolving it costs inventory no store access.
 */
export function shippingEstimate(price: number, weight: number): number {
  if (price >= FREE_SHIPPING_FROM) return 0;
  return BASE_SHIPPING + PER_KILOGRAM * Math.max(0, Math.ceil(weight / 1000));
}

/** Units on hand for a stock record; a product the warehouse has never recorded has none. */
export function quantityOf(stock: { quantity: number } | null | undefined): number {
  return stock?.quantity ?? 0;
}
