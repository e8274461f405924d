import {
  type Decision,
  type OrderCommand,
  type OrderEvent,
  type OrderState,
  type RecordedOrderEvent,
  MAX_ORDER_TOTAL,
  MAX_QUANTITY,
  decide,
  evolve,
  isRejection,
  replay,
} from '../src/domain';

// Given/when/then with no I/O: given past events, when a command, then new events or a rejection.

const T0 = Date.UTC(2025, 0, 1);
/** Stamps events as the store would: consecutive versions, one second apart. */
const recorded = (events: OrderEvent[], from = 1): RecordedOrderEvent[] =>
  events.map((e, i) => ({ ...e, version: from + i, recordedAt: new Date(T0 + (from + i) * 1000).toISOString() }));

const given = (...events: OrderEvent[]) => ({
  when: (command: OrderCommand) => {
    const decision: Decision = decide(command, replay(recorded(events)));
    return {
      then: (expected: OrderEvent[]) => expect(decision).toEqual(expected),
      thenRejected: (code: string, field?: string) => {
        expect(isRejection(decision)).toBe(true);
        expect(decision).toMatchObject(field ? { code, field } : { code });
      },
    };
  },
});

const created: OrderEvent = { type: 'OrderCreated', data: { orderId: 'o1', customerId: 'u1' } };
const kettle = (quantity = 2, unitPrice = 1500): OrderEvent => ({ type: 'OrderLineAdded', data: { productId: 'p1', quantity, unitPrice } });
const lamp: OrderEvent = { type: 'OrderLineAdded', data: { productId: 'p2', quantity: 1, unitPrice: 999 } };
const placed = (total: number): OrderEvent => ({ type: 'OrderPlaced', data: { total } });
const cancelled: OrderEvent = { type: 'OrderCancelled', data: { reason: null } };

describe('decide', () => {
  it('creates an order once', () => {
    given().when({ type: 'CreateOrder', orderId: 'o1', customerId: 'u1' }).then([created]);
    given(created).when({ type: 'CreateOrder', orderId: 'o1', customerId: 'u1' }).thenRejected('ORDER_ALREADY_EXISTS');
    given().when({ type: 'CreateOrder', orderId: 'o1', customerId: '' }).thenRejected('BAD_USER_INPUT', 'customerId');
  });

  it('refuses a line that would take the total past MAX_ORDER_TOTAL, counting the lines already there', () => {
    const add = (quantity: number, unitPrice: number, productId = 'p9'): OrderCommand => ({
      type: 'AddOrderLine',
      productId,
      quantity,
      unitPrice,
    });
    given(created).when(add(2, MAX_ORDER_TOTAL)).thenRejected('BAD_USER_INPUT', 'quantity');
    given(created)
      .when(add(1, MAX_ORDER_TOTAL))
      .then([{ type: 'OrderLineAdded', data: { productId: 'p9', quantity: 1, unitPrice: MAX_ORDER_TOTAL } }]);
    // 3000 (the kettle line) + the rest is exactly the maximum; a cent more is not.
    given(created, kettle())
      .when(add(1, MAX_ORDER_TOTAL - 3000))
      .then([{ type: 'OrderLineAdded', data: { productId: 'p9', quantity: 1, unitPrice: MAX_ORDER_TOTAL - 3000 } }]);
    given(created, kettle())
      .when(add(1, MAX_ORDER_TOTAL - 2999))
      .thenRejected('BAD_USER_INPUT', 'quantity');
    // More of a product already on the order counts at its first price, not the command's.
    given(created, kettle(1, 3_000_000))
      .when(add(MAX_QUANTITY, 1, 'p1'))
      .thenRejected('BAD_USER_INPUT', 'quantity');
  });

  it('never decides events whose replayed totals leave Int, whatever the commands', () => {
    // A mix of quantities and prices up to their limits: every accepted line keeps the total in range.
    let state: OrderState = replay(recorded([created]));
    let version = 1;
    let accepted = 0;
    for (let i = 0; i < 50; i++) {
      const command: OrderCommand = {
        type: 'AddOrderLine',
        productId: `p${i % 7}`,
        quantity: ((i * 37) % MAX_QUANTITY) + 1,
        unitPrice: (i * 7_919_000) % 5_000_000,
      };
      const decision = decide(command, state);
      if (isRejection(decision)) continue;
      for (const e of recorded(decision, ++version)) state = evolve(state, e);
      expect(state?.total).toBeLessThanOrEqual(MAX_ORDER_TOTAL);
      accepted++;
    }
    // Some accepted, some refused: the limit decided, not the inputs alone.
    expect(accepted).toBeGreaterThan(2);
    expect(accepted).toBeLessThan(50);
  });

  it('refuses any command to an order that does not exist', () => {
    for (const command of [
      { type: 'AddOrderLine', productId: 'p1', quantity: 1, unitPrice: 1 },
      { type: 'RemoveOrderLine', productId: 'p1' },
      { type: 'PlaceOrder' },
      { type: 'CancelOrder' },
    ] as const) {
      given().when(command).thenRejected('NOT_FOUND');
    }
  });

  it('adds a line at the price given, and more of the same product at the price first captured', () => {
    given(created).when({ type: 'AddOrderLine', productId: 'p1', quantity: 2, unitPrice: 1500 }).then([kettle()]);
    // The catalogue price changed to 1800 since: the line keeps 1500.
    given(created, kettle())
      .when({ type: 'AddOrderLine', productId: 'p1', quantity: 1, unitPrice: 1800 })
      .then([kettle(1, 1500)]);
  });

  it('checks quantities and prices', () => {
    for (const quantity of [0, -1, 1.5, 1001]) {
      given(created).when({ type: 'AddOrderLine', productId: 'p1', quantity, unitPrice: 10 }).thenRejected('BAD_USER_INPUT', 'quantity');
    }
    given(created).when({ type: 'AddOrderLine', productId: 'p1', quantity: 1, unitPrice: -1 }).thenRejected('BAD_USER_INPUT', 'unitPrice');
  });

  it('refuses to add a line to a placed or cancelled order', () => {
    given(created, kettle(), placed(3000))
      .when({ type: 'AddOrderLine', productId: 'p2', quantity: 1, unitPrice: 5 })
      .thenRejected('ORDER_NOT_DRAFT');
    given(created, cancelled).when({ type: 'AddOrderLine', productId: 'p2', quantity: 1, unitPrice: 5 }).thenRejected('ORDER_NOT_DRAFT');
  });

  it('removes a line the order has, and only while a draft', () => {
    given(created, kettle(), lamp)
      .when({ type: 'RemoveOrderLine', productId: 'p1' })
      .then([{ type: 'OrderLineRemoved', data: { productId: 'p1' } }]);
    given(created, lamp).when({ type: 'RemoveOrderLine', productId: 'p1' }).thenRejected('ORDER_LINE_NOT_FOUND', 'productId');
    given(created, kettle(), placed(3000)).when({ type: 'RemoveOrderLine', productId: 'p1' }).thenRejected('ORDER_NOT_DRAFT');
  });

  it('places an order with its total, never an empty one, never twice', () => {
    given(created, kettle(), lamp)
      .when({ type: 'PlaceOrder' })
      .then([placed(2 * 1500 + 999)]);
    given(created).when({ type: 'PlaceOrder' }).thenRejected('ORDER_EMPTY');
    given(created, kettle(), { type: 'OrderLineRemoved', data: { productId: 'p1' } })
      .when({ type: 'PlaceOrder' })
      .thenRejected('ORDER_EMPTY');
    given(created, kettle(), placed(3000)).when({ type: 'PlaceOrder' }).thenRejected('ORDER_NOT_DRAFT');
  });

  it('cancels a draft or a placed order, but not a cancelled one', () => {
    given(created).when({ type: 'CancelOrder' }).then([cancelled]);
    given(created, kettle(), placed(3000))
      .when({ type: 'CancelOrder', reason: 'changed my mind' })
      .then([{ type: 'OrderCancelled', data: { reason: 'changed my mind' } }]);
    given(created, cancelled).when({ type: 'CancelOrder' }).thenRejected('ORDER_ALREADY_CANCELLED');
  });

  it('is pure: the same command on the same state decides the same, and leaves the state alone', () => {
    const state = replay(recorded([created, kettle()]));
    const frozen = JSON.stringify(state);
    const a = decide({ type: 'AddOrderLine', productId: 'p2', quantity: 3, unitPrice: 100 }, state);
    const b = decide({ type: 'AddOrderLine', productId: 'p2', quantity: 3, unitPrice: 100 }, state);
    expect(a).toEqual(b);
    expect(JSON.stringify(state)).toBe(frozen);
  });
});

describe('evolve', () => {
  it('folds a history into the order, with times and versions from the store', () => {
    const history = recorded([
      created,
      kettle(),
      lamp,
      kettle(1, 1500),
      { type: 'OrderLineRemoved', data: { productId: 'p2' } },
      placed(4500),
    ]);
    const order = replay(history);
    expect(order).toEqual({
      id: 'o1',
      customerId: 'u1',
      status: 'PLACED',
      lines: [{ productId: 'p1', quantity: 3, unitPrice: 1500 }],
      total: 4500,
      createdAt: history[0]!.recordedAt,
      placedAt: history[5]!.recordedAt,
      cancelledAt: null,
      cancelReason: null,
      checkoutId: null,
      rejectionReason: null,
      version: 6,
      updatedAt: history[5]!.recordedAt,
    });
  });

  it('does not mutate the state it is given', () => {
    const before: OrderState = replay(recorded([created, kettle()]));
    const copy = structuredClone(before);
    evolve(before, recorded([lamp], 3)[0]!);
    expect(before).toEqual(copy);
  });

  it('refuses a stream that does not start with OrderCreated, or creates twice', () => {
    expect(() => replay(recorded([kettle()]))).toThrow(/before OrderCreated/);
    expect(() => replay(recorded([created, created]))).toThrow(/exists/);
  });

  it('cancelling records the time and reason', () => {
    const history = recorded([created, { type: 'OrderCancelled', data: { reason: 'too slow' } }]);
    expect(replay(history)).toMatchObject({
      status: 'CANCELLED',
      cancelledAt: history[1]!.recordedAt,
      cancelReason: 'too slow',
      placedAt: null,
    });
  });
});
