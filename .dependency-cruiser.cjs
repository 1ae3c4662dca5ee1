// Import-cycle check (`npm run lint`). Only `no-circular` for now; the layering rules of issue 10
// (http → services → engine/stores → domain, downward only) come with its restructuring.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle makes load order matter and layers meaningless: break it by moving the shared part down.',
      from: {},
      // A lazy `await import()` that closes a loop is how a module breaks one on purpose (test/helpers.ts).
      to: { circular: true, viaOnly: { dependencyTypesNot: ['dynamic-import'] } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    // Type-only imports are erased at compile time: they do not make a runtime cycle.
    tsPreCompilationDeps: false,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js', '.mjs', '.json'] },
  },
};
