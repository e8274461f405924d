const { subgraphCodegen } = require('@shop/codegen');

module.exports = subgraphCodegen({
  contextType: '../context#Context',
  mappers: {
    Payment: '../data/repository#PaymentRow',
    Order: '../data/repository#EntityRef',
  },
});
