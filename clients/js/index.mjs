// ES module entry: the CommonJS implementation re-exported, so that one copy of its state
// (the clients restoreCallMethods knows) serves both `import` and `require`.
import kit from './index.cjs';

export const { callbridge, restoreCallMethods } = kit;
