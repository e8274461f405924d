const { subgraphCodegen } = require('@shop/codegen');

module.exports = subgraphCodegen({
  contextType: '../context#Context',
  mappers: { Product: '../data/repository#ProductRow' },
});
