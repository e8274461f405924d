import { chunks, defaultSeedSizes, seedProducts, seedReviews, seedStock, seedUsers } from '../src';

describe('seed generators', () => {
  it('are deterministic', () => {
    expect([...seedUsers(defaultSeedSizes)]).toEqual([...seedUsers(defaultSeedSizes)]);
    expect([...seedReviews(defaultSeedSizes)].slice(0, 50)).toEqual([...seedReviews(defaultSeedSizes)].slice(0, 50));
  });

  it('produce the requested sizes with unique ids and valid values', () => {
    const users = [...seedUsers(defaultSeedSizes)];
    const products = [...seedProducts(defaultSeedSizes)];
    const reviews = [...seedReviews(defaultSeedSizes)];
    expect(users).toHaveLength(1000);
    expect(products).toHaveLength(1000);
    expect(reviews).toHaveLength(10000);
    expect(new Set(users.map((u) => u.email)).size).toBe(1000);
    expect(products.every((p) => Number.isInteger(p.price) && p.price > 0 && p.weight > 0)).toBe(true);
    expect(reviews.every((r) => r.rating >= 1 && r.rating <= 5)).toBe(true);
    const userIds = new Set(users.map((u) => u.id));
    const productIds = new Set(products.map((p) => p.id));
    expect(reviews.every((r) => userIds.has(r.authorId) && productIds.has(r.productId))).toBe(true);
    expect([...seedStock(defaultSeedSizes)].some((s) => s.quantity === 0)).toBe(true);
  });

  it('skews reviews so that some products have hundreds', () => {
    const perProduct = new Map<string, number>();
    for (const r of seedReviews(defaultSeedSizes)) perProduct.set(r.productId, (perProduct.get(r.productId) ?? 0) + 1);
    const counts = [...perProduct.values()].sort((a, b) => b - a);
    expect(counts[0]).toBeGreaterThan(300);
    expect(counts.filter((c) => c >= 100).length).toBeGreaterThanOrEqual(3);
  });

  it('chunks an iterable', () => {
    expect([...chunks([1, 2, 3, 4, 5], 2)]).toEqual([[1, 2], [3, 4], [5]]);
  });
});
