const { subgraphCodegen } = require('@shop/codegen');

module.exports = subgraphCodegen({
  contextType: '../context#Context',
  mappers: { User: '../data/repository#UserRow', AuthPayload: '../auth/sessions#AuthResult' },
});
