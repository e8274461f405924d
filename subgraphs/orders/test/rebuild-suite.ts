import { prng } from '@shop/seed';
import { DomainError } from '@shop/server';
import { type Backend, testTelemetry } from '@shop/testing';
import { type OrderCommand, replay } from '../src/domain';
import { fromRow, toDomainEvent } from '../src/data/projections';
import { type OrdersRepository, openOrdersRepository } from '../src/server';

/** Events the randomised history must reach at least. */
export const HISTORY_EVENTS = 3000;

/**
 * A randomised history of thousands of events (concurrent writers, refused commands, read models
 * caught up at random moments), then: the live read models equal a fold of every stream, and a
 * rebuild from position zero reproduces them exactly.
 */
export function rebuildSuite(backend: Backend): void {
  describe(`rebuilding orders' read models on ${backend.name}`, () => {
    let orders: OrdersRepository;
    let close: () => Promise<void>;
    beforeAll(async () => {
      ({ orders, close } = await openOrdersRepository({ telemetry: testTelemetry('orders'), store: await backend.location() }));
      await orders.seed({ users: 40, products: 50, reviews: 0 });
    });
    afterAll(async () => {
      await close?.();
      await backend.cleanup();
    });

    it(`reproduces the live read models exactly after a random history of ${HISTORY_EVENTS}+ events`, async () => {
      const seed = 20250107;
      const rand = prng(seed);
      const pick = <T>(items: readonly T[]) => items[Math.floor(rand() * items.length)]!;
      const orderIds = Array.from({ length: 100 }, (_, i) => `r-${i}`);
      const outcomes = { ok: 0, refused: 0, conflicts: 0 };
      const command = (): OrderCommand => {
        const r = rand();
        const productId = `p${String(1 + Math.floor(rand() * 50)).padStart(5, '0')}`;
        if (r < 0.1) return { type: 'CreateOrder', orderId: '', customerId: `u${String(1 + Math.floor(rand() * 40)).padStart(5, '0')}` };
        if (r < 0.65) return { type: 'AddOrderLine', productId, quantity: 1 + Math.floor(rand() * 5), unitPrice: 0 };
        if (r < 0.8) return { type: 'RemoveOrderLine', productId };
        if (r < 0.92) return { type: 'PlaceOrder' };
        return { type: 'CancelOrder', reason: rand() < 0.5 ? 'random' : null };
      };
      const run = async (target: string, c: OrderCommand) => {
        // Orders get placed or cancelled and take no more lines: a create starts a new one.
        let orderId = target;
        if (c.type === 'CreateOrder' && c.orderId === '') {
          orderId = `r-${orderIds.length}`;
          orderIds.push(orderId);
        }
        try {
          const cmd =
            c.type === 'CreateOrder'
              ? { ...c, orderId }
              : c.type === 'AddOrderLine'
                ? { ...c, unitPrice: await orders.priceOf(c.productId) }
                : c;
          await orders.execute(orderId, cmd, { correlationId: 'random-history', project: rand() < 0.2 });
          outcomes.ok++;
        } catch (err) {
          // A lost race and a refused command are both DomainErrors; only the code tells them apart.
          if (err instanceof DomainError && err.code === 'CONCURRENCY_CONFLICT') outcomes.conflicts++;
          else if (err instanceof DomainError) outcomes.refused++;
          else throw err;
        }
      };
      const seeded = (await orders.events.readAll(0, 1_000_000)).length;
      // Every order is created first, so most later commands have something to act on.
      for (const id of orderIds)
        await run(id, { type: 'CreateOrder', orderId: id, customerId: pick(['u00001', 'u00002', 'u00003', 'u00004']) });
      // (Counted, not read from the head position: on PostgreSQL a refused insert leaves a gap.)
      for (let round = 0; seeded + outcomes.ok < HISTORY_EVENTS; round++) {
        if (round > HISTORY_EVENTS) throw new Error(`the random history stalled at ${seeded + outcomes.ok} events`);
        // Eight writers at once, often on the same order: some lose the race.
        await Promise.all(Array.from({ length: 8 }, () => run(pick(rand() < 0.3 ? orderIds.slice(-5) : orderIds), command())));
        if (rand() < 0.05) await orders.projections.catchUp();
      }
      await orders.projections.catchUp();
      const events = await orders.events.readAll(0, 1_000_000);
      expect(events.length).toBeGreaterThanOrEqual(HISTORY_EVENTS);
      // Every accepted command wrote one event; refused and conflicting ones wrote none.
      expect(events.length).toBe(seeded + outcomes.ok);
      expect(outcomes.refused).toBeGreaterThan(0);

      const live = await orders.readModels();
      // The live models are the fold of every stream...
      const streams = new Map<string, typeof events>();
      for (const e of events) streams.set(e.streamId, [...(streams.get(e.streamId) ?? []), e]);
      expect(live.orderView.map(fromRow)).toEqual([...streams.keys()].sort().map((id) => replay(streams.get(id)!.map(toDomainEvent))));
      expect(live.customerOrders).toEqual(live.orderView);
      const head = events.at(-1)!.position;
      expect(live.checkpoints).toEqual({ order_view: head, customer_orders: head, checkout_view: head });

      // ...and a rebuild from zero gives them back exactly.
      const report = await orders.rebuild();
      expect(report.events).toBe(events.length);
      expect(await orders.readModels()).toEqual(live);
      if (process.env.TEST_REPORT)
        process.stderr.write(`${backend.name}: ${events.length} events, ${JSON.stringify(outcomes)}, rebuild ${report.ms} ms\n`);
    }, 180_000);
  });
}
