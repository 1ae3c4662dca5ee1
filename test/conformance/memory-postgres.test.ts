// Conformance: memory+postgres. The spec itself is in test/support/sale-model.ts.
import { conformanceSuite } from '../support/conformance-suite.js';

conformanceSuite('memory+postgres', { modelRuns: 10, faultRuns: 6, interleavingRuns: 10, maxCommands: 10 });
