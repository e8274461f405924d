const { subgraphCodegen } = require('@shop/codegen');

const config = subgraphCodegen({
  contextType: '../context#Context',
  mappers: {
    Order: '../model#OrderModel',
    OrderLine: '../model#OrderLineModel',
    OrderHistoryEntry: '../model#HistoryEntryModel',
    User: '../model#EntityRef',
    Product: '../model#EntityRef',
    Checkout: '../checkout/projection#CheckoutView',
    CheckoutStep: '../checkout/domain#Step',
    OutOfStockLine: '../checkout/domain#ShortLine',
  },
});
// DateTime travels as an ISO 8601 string (UTC, millisecond precision).
config.generates['src/generated/graphql.ts'].config.scalars.DateTime = 'string';

module.exports = config;
