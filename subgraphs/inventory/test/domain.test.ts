import { quantityOf, shippingEstimate } from '../src/domain';

describe('shippingEstimate', () => {
  it('is free at and above 1000.00', () => {
    expect(shippingEstimate(100_000, 20_000)).toBe(0);
    expect(shippingEstimate(150_000, 1_200)).toBe(0);
  });

  it('charges 5.00 plus 0.50 per started kilogram below 1000.00', () => {
    expect(shippingEstimate(99_999, 1_200)).toBe(600);
    expect(shippingEstimate(2_500, 1_000)).toBe(550);
    expect(shippingEstimate(2_500, 1_001)).toBe(600);
    expect(shippingEstimate(2_500, 1)).toBe(550);
    expect(shippingEstimate(0, 20_000)).toBe(1_500);
  });

  it('charges only the flat part for a weightless product', () => {
    expect(shippingEstimate(100, 0)).toBe(500);
  });
});

describe('quantityOf', () => {
  it('reads a record, and counts a missing record as none on hand', () => {
    expect(quantityOf({ quantity: 7 })).toBe(7);
    expect(quantityOf(null)).toBe(0);
  });
});
