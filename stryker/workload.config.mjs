import { area } from './base.mjs';
// The workload language's parser and checker against tests/tools/workload-parser
// and workload-language.
export default area('workload', ['tools/workload/parser.ts', 'tools/workload/check.ts'], 'tools/workload-(parser|language)');
