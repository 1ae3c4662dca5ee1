// Conformance: redis+postgres x2. The spec itself is in test/support/sale-model.ts.
import { conformanceSuite } from '../support/conformance-suite.js';

conformanceSuite('redis+postgres x2', { modelRuns: 10, faultRuns: 6, interleavingRuns: 10, maxCommands: 10 });
