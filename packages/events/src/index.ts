export * from './types';
export * from './outbox';
export * from './inbox';
export { MemoryBroker, MemoryBus, type MemoryBusOptions } from './bus-memory';
export { AmqpBus, type AmqpBusOptions, connectAmqpBus } from './bus-amqp';
