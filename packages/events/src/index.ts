export * from './types';
export * from './outbox';
export * from './inbox';
export { type BusDeadLetter, MemoryBroker, MemoryBus, type MemoryBusOptions, isPermanentError } from './bus-memory';
export { AmqpBus, type AmqpBusOptions, EVENTS_EXCHANGE, connectAmqpBus, deadLetterQueue, groupQueue } from './bus-amqp';
export * from './checkout';
export { withTimeout } from './deadline';
