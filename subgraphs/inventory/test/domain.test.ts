import {
  type Reservation,
  type ReservationStatus,
  applyEffect,
  answerReserveAgain,
  availableOf,
  checkOnHand,
  decideCommit,
  decideExpiry,
  decideRelease,
  decideReserve,
  decideRestock,
  mergeLines,
  shippingEstimate,
} from '../src/domain';

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

describe('stock levels', () => {
  it('available is on hand less reserved, and a missing record has none', () => {
    expect(availableOf({ onHand: 7, reserved: 0 })).toBe(7);
    expect(availableOf({ onHand: 7, reserved: 5 })).toBe(2);
    expect(availableOf({ onHand: 5, reserved: 5 })).toBe(0);
    expect(availableOf(null)).toBe(0);
    expect(availableOf(undefined)).toBe(0);
  });

  it('each effect moves on hand and reserved as documented', () => {
    const s = { onHand: 10, reserved: 4 };
    expect(applyEffect(s, 'reserve', 3)).toEqual({ onHand: 10, reserved: 7 });
    expect(applyEffect(s, 'commit', 3)).toEqual({ onHand: 7, reserved: 1 });
    expect(applyEffect(s, 'release', 3)).toEqual({ onHand: 10, reserved: 1 });
    expect(applyEffect(s, 'restock', 3)).toEqual({ onHand: 13, reserved: 4 });
  });

  it('setStock may not take on hand below what is reserved: BAD_USER_INPUT on quantity', () => {
    expect(() => checkOnHand('p1', 5, 5)).not.toThrow();
    expect(() => checkOnHand('p1', 0, 0)).not.toThrow();
    expect(() => checkOnHand('p1', 4, 5)).toThrow(expect.objectContaining({ code: 'BAD_USER_INPUT', field: 'quantity' }));
  });
});

describe('mergeLines', () => {
  it('sums a product listed twice and sorts by product id (the lock order)', () => {
    expect(
      mergeLines([
        { productId: 'p3', quantity: 1 },
        { productId: 'p1', quantity: 2 },
        { productId: 'p3', quantity: 4 },
      ]),
    ).toEqual([
      { productId: 'p1', quantity: 2 },
      { productId: 'p3', quantity: 5 },
    ]);
  });
});

const NOW = Date.parse('2030-01-01T00:00:00.000Z');
const LATER = '2030-01-01T00:05:00.000Z';
const EARLIER = '2029-12-31T23:55:00.000Z';
const given = (status: ReservationStatus, expiresAt = LATER): Reservation => ({
  checkoutId: 'c1',
  orderId: 'o1',
  status,
  lines: [{ productId: 'p1', quantity: 2 }],
  shortages: status === 'REJECTED' ? [{ productId: 'p1', requested: 2, available: 1 }] : [],
  expiresAt,
});

describe('Reserve', () => {
  const lines = mergeLines([
    { productId: 'p1', quantity: 2 },
    { productId: 'p2', quantity: 3 },
  ]);

  it('holds every line when every line is available', () => {
    const stock = new Map([
      ['p1', { onHand: 5, reserved: 3 }],
      ['p2', { onHand: 3, reserved: 0 }],
    ]);
    expect(decideReserve(lines, stock, LATER)).toEqual({
      to: 'HELD',
      effect: 'reserve',
      replies: [{ type: 'StockReserved', expiresAt: LATER }],
      outcome: 'reserved',
    });
  });

  it('holds none when one line is short, and lists each short line with what was available', () => {
    const stock = new Map([
      ['p1', { onHand: 5, reserved: 4 }],
      ['p2', { onHand: 3, reserved: 0 }],
    ]);
    expect(decideReserve(lines, stock, LATER)).toEqual({
      to: 'REJECTED',
      replies: [{ type: 'StockReservationFailed', lines: [{ productId: 'p1', requested: 2, available: 1 }] }],
      outcome: 'out_of_stock',
    });
  });

  it('counts a product with no stock record as none available', () => {
    const decision = decideReserve(lines, new Map([['p1', { onHand: 9, reserved: 0 }]]), LATER);
    expect(decision.replies).toEqual([{ type: 'StockReservationFailed', lines: [{ productId: 'p2', requested: 3, available: 0 }] }]);
  });

  it('seen again, answers what it answered the first time and changes nothing', () => {
    expect(answerReserveAgain(given('HELD'))).toEqual({ replies: [{ type: 'StockReserved', expiresAt: LATER }] });
    expect(answerReserveAgain(given('COMMITTED'))).toEqual({ replies: [{ type: 'StockReserved', expiresAt: LATER }] });
    expect(answerReserveAgain(given('REJECTED'))).toEqual({
      replies: [{ type: 'StockReservationFailed', lines: [{ productId: 'p1', requested: 2, available: 1 }] }],
    });
  });
});

describe('Commit', () => {
  it('HELD → COMMITTED, taking the units off the shelf', () => {
    expect(decideCommit(given('HELD'), NOW)).toEqual({
      to: 'COMMITTED',
      effect: 'commit',
      replies: [{ type: 'StockCommitted' }],
      outcome: 'committed',
    });
  });

  it('a hold past its expiry expires now (as the sweeper would) and the commit fails', () => {
    expect(decideCommit(given('HELD', EARLIER), NOW)).toEqual({
      to: 'EXPIRED',
      effect: 'release',
      replies: [
        { type: 'StockReleased', expired: true },
        { type: 'StockCommitFailed', reason: 'RESERVATION_EXPIRED' },
      ],
      outcome: 'expired',
    });
  });

  it('answers the recorded outcome otherwise, changing nothing', () => {
    expect(decideCommit(given('COMMITTED'), NOW)).toEqual({ replies: [{ type: 'StockCommitted' }] });
    expect(decideCommit(given('RESTOCKED'), NOW)).toEqual({ replies: [{ type: 'StockCommitted' }] });
    expect(decideCommit(given('RELEASED'), NOW)).toEqual({ replies: [{ type: 'StockCommitFailed', reason: 'RESERVATION_RELEASED' }] });
    expect(decideCommit(given('EXPIRED'), NOW)).toEqual({ replies: [{ type: 'StockCommitFailed', reason: 'RESERVATION_EXPIRED' }] });
    expect(decideCommit(given('REJECTED'), NOW)).toEqual({ replies: [{ type: 'StockCommitFailed', reason: 'NO_RESERVATION' }] });
    expect(decideCommit(undefined, NOW)).toEqual({ replies: [{ type: 'StockCommitFailed', reason: 'NO_RESERVATION' }] });
  });
});

describe('Release', () => {
  it('HELD → RELEASED, the units available again', () => {
    expect(decideRelease(given('HELD'))).toEqual({
      to: 'RELEASED',
      effect: 'release',
      replies: [{ type: 'StockReleased', expired: false }],
      outcome: 'released',
    });
  });

  it('nothing held is released already: idempotent, also for an unknown checkout', () => {
    expect(decideRelease(undefined)).toEqual({ replies: [{ type: 'StockReleased', expired: false }] });
    expect(decideRelease(given('REJECTED'))).toEqual({ replies: [{ type: 'StockReleased', expired: false }] });
    expect(decideRelease(given('RELEASED'))).toEqual({ replies: [{ type: 'StockReleased', expired: false }] });
    expect(decideRelease(given('EXPIRED'))).toEqual({ replies: [{ type: 'StockReleased', expired: true }] });
  });

  it('does not release committed units: it says they are committed (a Restock undoes them)', () => {
    expect(decideRelease(given('COMMITTED'))).toEqual({ replies: [{ type: 'StockCommitted' }] });
    expect(decideRelease(given('RESTOCKED'))).toEqual({ replies: [{ type: 'StockRestocked' }] });
  });
});

describe('Restock', () => {
  it('COMMITTED → RESTOCKED, the units back on hand', () => {
    expect(decideRestock(given('COMMITTED'))).toEqual({
      to: 'RESTOCKED',
      effect: 'restock',
      replies: [{ type: 'StockRestocked' }],
      outcome: 'restocked',
    });
  });

  it('a hold is released instead; anything else holds nothing and is answered as done', () => {
    expect(decideRestock(given('HELD'))).toEqual({
      to: 'RELEASED',
      effect: 'release',
      replies: [{ type: 'StockRestocked' }],
      outcome: 'released',
    });
    for (const r of [undefined, given('RESTOCKED'), given('RELEASED'), given('EXPIRED'), given('REJECTED')]) {
      expect(decideRestock(r)).toEqual({ replies: [{ type: 'StockRestocked' }] });
    }
  });
});

describe('Expiry (the sweeper)', () => {
  it('expires a HELD reservation past its time and tells orders, unasked', () => {
    expect(decideExpiry(given('HELD', EARLIER), NOW)).toEqual({
      to: 'EXPIRED',
      effect: 'release',
      replies: [{ type: 'StockReleased', expired: true }],
      outcome: 'expired',
    });
  });

  it('leaves a hold not yet due, and anything no longer HELD (a commit or another sweeper came first)', () => {
    expect(decideExpiry(given('HELD', LATER), NOW)).toEqual({ replies: [] });
    expect(decideExpiry(given('COMMITTED', EARLIER), NOW)).toEqual({ replies: [] });
    expect(decideExpiry(given('EXPIRED', EARLIER), NOW)).toEqual({ replies: [] });
    expect(decideExpiry(undefined, NOW)).toEqual({ replies: [] });
  });
});
