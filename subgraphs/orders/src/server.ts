import { dirname, join } from 'node:path';
import { CHECKOUT_REPLIES, eventMigrations } from '@shop/events';
import {
  type Consumers,
  type StoreSubgraph,
  type SubgraphFactoryOptions,
  DomainError,
  defineStoreSubgraph,
  loadTypeDefs,
} from '@shop/server';
import { type Kysely as KyselyOf, type StoreLocation, openStore } from '@shop/store';
import type { Telemetry } from '@shop/telemetry';
import type { Context } from './context';
import { migrations, slotMapMigrations } from './data/migrations';
import { type OrdersDB, OrdersRepository } from './data/repository';
import { checkoutConsumers, consumers } from './events';
import { type CheckoutOptions, defaultCheckoutOptions } from './checkout/orchestrator';
import { createLoaders } from './loaders';
import { resolvers } from './resolvers';
import { slotOfId } from './sharding/ids';
import { type ShardInfo, type SlotMap, ensureSlotMap, openMove, readSlotMap, reconcileOwnership } from './sharding/map';
import { ShardedOrders } from './sharding/router';
import { type Shard, assembleShard, openShard, storeLocationOf } from './sharding/shard';
import type { MoverShard } from './sharding/mover';

type Kysely = KyselyOf<unknown>;

export const typeDefs = loadTypeDefs(join(__dirname, 'schema.graphql'));

/** The orders subgraph, with its shards: tests and the maintenance commands use them. */
export interface OrdersSubgraph extends StoreSubgraph<OrdersDB> {
  /** Orders over every shard: routing, fan-out reads, the cross-shard listing. */
  readonly orders: ShardedOrders;
  /** Every shard open now (the first is the service's own store), in the map's order. */
  readonly shards: () => Shard[];
}

export { OrdersRepository };

/** Shards when ORDERS_SHARDS is not set, embedded: four, so the embedded mode is sharded too. */
export const DEFAULT_EMBEDDED_SHARDS = 4;

/**
 * Where the shards are when `ORDERS_SHARDS` does not say: on PostgreSQL one shard, the service's
 * own database; on SQLite four, the service's file and three beside it (`orders.sqlite`,
 * `orders-s1.sqlite`...), or four in memory.
 */
export function defaultShardLocations(store: StoreLocation): string[] {
  if (store.postgresUrl) return [store.postgresUrl];
  const path = store.sqlitePath ?? ':memory:';
  if (path === ':memory:') return Array.from({ length: DEFAULT_EMBEDDED_SHARDS }, () => ':memory:');
  const base = path.replace(/\.sqlite$/, '');
  return Array.from({ length: DEFAULT_EMBEDDED_SHARDS }, (_, i) =>
    i === 0 ? path : join(dirname(path), `${base.split(/[\\/]/).at(-1)}-s${i}.sqlite`),
  );
}

export interface OrdersOptions extends SubgraphFactoryOptions {
  projectionPollMs?: number;
  checkout?: Partial<CheckoutOptions>;
  /**
   * `ORDERS_SHARDS`: where each shard's store is (PostgreSQL URLs or SQLite paths), used when the
   * slot map is first created in the first one; afterwards the map is the truth. @default defaultShardLocations(store)
   */
  shards?: readonly string[] | undefined;
  /** `ORDERS_MAP_REFRESH_MS`: how often the slot map's version is read. @default 1000 */
  mapRefreshMs?: number | undefined;
  /** `ORDERS_FENCE_WAIT_MS`: how long a write waits for its slot to finish moving. @default 5000 */
  fenceWaitMs?: number | undefined;
  /** `ORDERS_SHARD_READ_TIMEOUT_MS`: how long the cross-shard listing waits for each shard before leaving it out. @default 2000 */
  shardReadTimeoutMs?: number | undefined;
  /**
   * `ORDERS_SLOT_MAP`: where the slot map lives (a PostgreSQL URL or a SQLite path), when not in
   * the first shard's store. @default the first shard
   */
  slotMap?: string | undefined;
}

/**
 * Builds the orders subgraph (owner of `Order`) over its shards. Does not listen. The slot map
 * lives in the first shard's store; every shard has its own event store, read models, outbox,
 * relay and inbox, and the first shard's inbox (the service's subscription) hands each consumed
 * event to the shard it concerns: catalogue and user events to every shard, a checkout's replies
 * to the shard of its order. Read models catch up at start, after every command, and every
 * `projectionPollMs` in the background.
 */
export async function createOrders(options: OrdersOptions): Promise<OrdersSubgraph> {
  const checkoutOptions: CheckoutOptions = { ...defaultCheckoutOptions, ...options.checkout };
  const locations = options.shards && options.shards.length > 0 ? [...options.shards] : defaultShardLocations(options.store);
  const { telemetry } = options;
  // Connections are per shard: more shards, fewer each (PostgreSQL's 100 are shared by every service).
  const poolSize = Math.max(3, Math.ceil(10 / locations.length));
  const shardConsumers = (shard: Pick<Shard, 'orders' | 'checkout'>): Consumers => ({
    ...consumers(),
    ...checkoutConsumers(shard.checkout),
  });
  let sharded: ShardedOrders | undefined;
  const mapStore = options.slotMap ? await openSlotMapStore(telemetry, options.slotMap) : undefined;
  const factory = defineStoreSubgraph<OrdersDB, ShardedOrders, Context>({
    typeDefs,
    resolvers,
    migrations,
    repository: async (store, events) => {
      const mapDb = mapStore?.db ?? (store.db as unknown as Kysely);
      const map = await ensureSlotMap(mapDb, locations);
      if (map.shards[0]!.location !== locations[0]) {
        telemetry.logger.warn(
          { shard: map.shards[0]!.id },
          'the slot map names another location for the first shard than the configuration',
        );
      }
      const home = assembleShard({ info: map.shards[0]!, store, relay: undefined, sink: events, telemetry, checkoutOptions });
      const shards = new Map<string, Shard>([[home.info.id, home]]);
      const open = (info: SlotMap['shards'][number]) =>
        openShard(info, { telemetry, bus: options.bus, checkoutOptions, consumers: shardConsumers, poolSize });
      try {
        for (const info of map.shards.slice(1)) shards.set(info.id, await open(info));
        // Ownership follows the map unless a move is under way (then the mover owns the question).
        if (!(await openMove(mapDb))) {
          for (const shard of shards.values()) await reconcileOwnership(shard.store.db as unknown as Kysely, map, shard.info.id);
        }
      } catch (err) {
        for (const shard of [...shards.values()].slice(1)) await shard.stop().catch(() => undefined);
        throw err;
      }
      sharded = new ShardedOrders({
        mapDb,
        map,
        shards,
        open,
        telemetry,
        refreshMs: options.mapRefreshMs,
        fenceWaitMs: options.fenceWaitMs,
        readTimeoutMs: options.shardReadTimeoutMs,
      });
      return sharded;
    },
    consumes: (orders) => routedConsumers(orders),
    context: ({ repository: orders, telemetry: t, logger, pageMax, identity, subscriptionEvent }) => ({
      orders,
      loaders: createLoaders(orders, t),
      logger,
      requestId: requestIdOf(logger),
      pageMax,
      viewer: identity,
      subscriptionEvent,
    }),
  });
  const subgraph = await factory({ ...options, store: storeLocationOf(locations[0]!) }).catch(async (err: unknown) => {
    await mapStore?.close();
    throw err;
  });
  const orders = sharded!;
  try {
    await Promise.all(orders.all().map((s) => s.orders.projections.catchUp()));
  } catch (err) {
    await orders.stop().catch(() => undefined);
    await subgraph.stop();
    await mapStore?.close();
    throw err;
  }
  orders.start(options.projectionPollMs ?? 1000);
  const stop = subgraph.stop.bind(subgraph);
  return Object.assign(subgraph, {
    orders,
    shards: () => orders.all(),
    async stop() {
      await orders.stop();
      await stop();
      await mapStore?.close();
    },
  });
}

/**
 * The service's consumers, as its subscription delivers them into the first shard's inbox:
 * catalogue and user events are applied there and then in every other shard's own inbox;
 * a checkout's reply goes to the shard that owns its order's slot (retried on the new owner while
 * the slot moves). A shard that fails fails the delivery, which the bus retries; shards that had
 * applied it skip it by their inbox.
 */
function routedConsumers(orders: ShardedOrders): Consumers {
  const home = () => orders.all()[0]!;
  const everywhere = Object.fromEntries(
    Object.entries(consumers()).map(([type, consumer]) => [
      type,
      {
        versions: consumer.versions,
        handle: async (trx: Parameters<typeof consumer.handle>[0], event: Parameters<typeof consumer.handle>[1]) => {
          await consumer.handle(trx, event);
          for (const shard of orders.all().slice(1)) await shard.consumer!.batch([event]);
        },
      },
    ]),
  );
  const replies = Object.fromEntries(
    CHECKOUT_REPLIES.map((type) => [
      type,
      {
        versions: [1],
        handle: async (trx: Parameters<Consumers[string]['handle']>[0], event: Parameters<Consumers[string]['handle']>[1]) => {
          const payload = event.payload as { orderId?: unknown; checkoutId?: unknown };
          const idOf = (v: unknown) => (typeof v === 'string' ? slotOfId(v) : undefined);
          const slot = idOf(payload.orderId) ?? idOf(payload.checkoutId);
          if (slot === undefined) throw new DomainError('BAD_USER_INPUT', `${event.type} names no order orders issued`);
          await orders.write(slot, (shard) => (shard === home() ? shard.checkout.onReply(trx, event) : shard.consumer!.batch([event])));
        },
      },
    ]),
  );
  return { ...everywhere, ...replies };
}

/**
 * Opens orders' shards on their own (no server, no bus) for maintenance: `npm run orders:rebuild`,
 * `npm run sagas`. Events a repository would append stay in the outbox for the service's relay.
 */
export async function openOrdersShards(options: {
  telemetry: Telemetry;
  /** The first shard's store: the slot map names the others. */
  store: StoreLocation;
  /** `ORDERS_SLOT_MAP`, when the map is not in the first shard. */
  slotMap?: string | undefined;
}): Promise<{ shards: { id: string; location: string; orders: OrdersRepository }[]; close(): Promise<void> }> {
  // The same opening as the mover's: the first shard, the map's store, each shard once.
  const opened = await openForResharding(options);
  try {
    // No map yet: the service never ran sharded here, and its one store is all there is.
    const map = await readSlotMap(opened.mapDb);
    const infos = map?.shards ?? [{ id: 's0', location: options.store.postgresUrl ?? options.store.sqlitePath ?? ':memory:' }];
    const shards: { id: string; location: string; orders: OrdersRepository }[] = [];
    for (const info of infos) shards.push({ ...info, orders: (await opened.shard(info)).orders });
    return { shards, close: () => opened.close() };
  } catch (err) {
    await opened.close();
    throw err;
  }
}

/**
 * One orders store on its own, as a single shard that owns every slot (the slot map is created in
 * it when missing): tests of the repository, and tools that work on one shard.
 */
export async function openOrdersRepository(options: {
  telemetry: Telemetry;
  store: StoreLocation;
}): Promise<{ orders: OrdersRepository; close(): Promise<void> }> {
  const { store, orders, close } = await openOrdersStore(options.telemetry, options.store);
  try {
    const map = await ensureSlotMap(store.db as unknown as Kysely, [options.store.postgresUrl ?? options.store.sqlitePath ?? ':memory:']);
    if (map.shards.length === 1) await reconcileOwnership(store.db as unknown as Kysely, map, map.shards[0]!.id);
  } catch (err) {
    await close();
    throw err;
  }
  return { orders, close };
}

/**
 * What `npm run orders:reshard` works with: the slot map's store (the first shard's) and a way to
 * open any shard the map names, each opened once and closed by `close`.
 */
export async function openForResharding(options: { telemetry: Telemetry; store: StoreLocation; slotMap?: string | undefined }): Promise<{
  mapDb: Kysely;
  shard: (info: ShardInfo) => Promise<MoverShard>;
  close(): Promise<void>;
}> {
  const first = await openOrdersStore(options.telemetry, options.store);
  const mapStore = options.slotMap
    ? await openSlotMapStore(options.telemetry, options.slotMap).catch(async (err: unknown) => {
        await first.close();
        throw err;
      })
    : undefined;
  const opened = new Map<string, Promise<Awaited<ReturnType<typeof openOrdersStore>>>>();
  const firstLocation = options.store.postgresUrl ?? options.store.sqlitePath ?? ':memory:';
  return {
    mapDb: mapStore?.db ?? (first.store.db as unknown as Kysely),
    async shard(info) {
      let found = opened.get(info.id);
      if (!found) {
        found =
          info.location === firstLocation ? Promise.resolve(first) : openOrdersStore(options.telemetry, storeLocationOf(info.location));
        opened.set(info.id, found);
      }
      const { store, orders } = await found;
      return { info, db: store.db as unknown as Kysely, orders };
    },
    async close() {
      for (const shard of opened.values()) {
        const s = await shard.catch(() => undefined);
        if (s && s !== first) await s.close().catch(() => undefined);
      }
      await first.close();
      await mapStore?.close();
    },
  };
}

/** The slot map's own store (`ORDERS_SLOT_MAP`): only the map's tables. */
async function openSlotMapStore(telemetry: Telemetry, location: string): Promise<{ db: Kysely; close(): Promise<void> }> {
  const store = await openStore<unknown>({ service: telemetry.service, telemetry, poolSize: 2, ...storeLocationOf(location) });
  try {
    await store.migrate(slotMapMigrations);
  } catch (err) {
    await store.close();
    throw err;
  }
  return { db: store.db, close: () => store.close() };
}

async function openOrdersStore(telemetry: Telemetry, location: StoreLocation) {
  const store = await openStore<OrdersDB>({ service: telemetry.service, telemetry, poolSize: 3, ...location });
  try {
    await store.migrate({ ...eventMigrations, ...migrations });
  } catch (err) {
    await store.close();
    throw err;
  }
  const orders = new OrdersRepository(store, { source: telemetry.service, committed: () => {} }, telemetry.logger);
  return { store, orders, close: () => store.close() };
}

/** The request id a request's child logger was made with ('' outside a request). */
function requestIdOf(logger: { bindings(): Record<string, unknown> }): string {
  const id = logger.bindings().requestId;
  return typeof id === 'string' ? id : '';
}
export type { CheckoutView } from './checkout/projection';
export { newOrderId, orderIdFor, slotOfId } from './sharding/ids';
export { SEED_ORDERS, seedCustomerOf, seedOrderId } from './data/repository';
export { ShardedOrders, type OrdersPage, kWayMerge } from './sharding/router';
export { SlotNotOwnedError } from './sharding/ownership';
export type { Shard } from './sharding/shard';
export type { SlotMap, ShardInfo } from './sharding/map';
export { addShard, readSlotMap } from './sharding/map';
export {
  MOVE_POINTS,
  type MovePoint,
  type MoveProgress,
  type MoveReport,
  abortMove,
  moveSlots,
  openMoveRow,
  rebalance,
  resumeMove,
} from './sharding/mover';
