// typescript-resolvers, with its one `any` removed: the function form of SubscriptionResolver
// takes `(...args: any[])`. `never[]` accepts every function just the same (parameters are
// contravariant), and the generated files then hold no `any` at all.
const base = require('@graphql-codegen/typescript-resolvers');

const strict = (text) => text.replace(/\(\.\.\.args: any\[\]\)/g, '(...args: never[])');

// `module.exports.plugin =` (not an object literal): codegen loads plugins with import(), which sees
// only CommonJS exports it can find statically.
module.exports.plugin = async function plugin(schema, documents, config, info) {
  const output = await base.plugin(schema, documents, config, info);
  if (typeof output === 'string') return strict(output);
  return {
    ...output,
    content: strict(output.content),
    ...(output.prepend ? { prepend: output.prepend.map(strict) } : {}),
    ...(output.append ? { append: output.append.map(strict) } : {}),
  };
};
