const { subgraphCodegen } = require('@shop/codegen');

module.exports = subgraphCodegen({
  contextType: '../context#Context',
  mappers: {
    Review: '../data/repository#ReviewRow',
    User: '../data/repository#EntityRef',
    Product: '../data/repository#EntityRef',
  },
});
