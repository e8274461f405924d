const { subgraphCodegen } = require('@shop/codegen');

module.exports = subgraphCodegen({
  contextType: '../context#Context',
  // inventory stores no product: a Product here is the reference the gateway sent (id, plus the
  // @requires fields when it asked for shippingEstimate). Stock is loaded per field.
  mappers: { Product: '../domain#ProductRef' },
});
