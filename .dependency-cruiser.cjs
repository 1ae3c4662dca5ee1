// Import rules (`npm run lint`): no cycles, and layers import only downward:
//   cli, server → http → wiring → services → engine, stores, sinks → gateway → domain
// (gateway: the in-process filters and hints, no I/O of their own; domain: types and pure rules).
// Type-only imports count for the layers (a type from above is a dependency on it) but not for cycles
// (they are erased at compile time, so they cannot make a runtime cycle).
/** @type {import('dependency-cruiser').IConfiguration} */
const layer = (name, path, mayNotImport, comment) => ({
  name,
  severity: 'error',
  comment,
  from: { path },
  to: { path: mayNotImport },
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle makes load order matter and layers meaningless: break it by moving the shared part down.',
      from: {},
      // A lazy `await import()` that closes a loop is how a module breaks one on purpose.
      to: { circular: true, viaOnly: { dependencyTypesNot: ['dynamic-import', 'type-only'] } },
    },
    layer('domain-is-the-bottom', '^src/domain/', '^src/(?!domain/)', 'domain/ holds types and pure rules: it imports nothing of ours.'),
    layer('gateway-above-domain-only', '^src/gateway/', '^src/(?!domain/|gateway/)', 'gateway/ filters use only domain rules; stores and services call them, not the other way round.'),
    layer('stores-below-services', '^src/(engine|stores|sinks)/', '^src/(services|wiring|http|cli|bench|ops|server)', 'engine/, stores/ and sinks/ are below the services: give them what they need through their constructor.'),
    layer('services-below-wiring', '^src/services/', '^src/(wiring|http|cli|bench|ops|server)', 'services/ are wired, they do not wire.'),
    layer('wiring-below-http', '^src/wiring/', '^src/(http|cli|bench|server)', 'wiring/ builds the services; the HTTP layer uses them.'),
    layer('http-uses-services-not-stores', '^src/http/', '^src/(stores|sinks|engine|cli|bench|ops)/', 'Routes talk to services, never to a store or the engine directly.'),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js', '.mjs', '.json'] },
  },
};
