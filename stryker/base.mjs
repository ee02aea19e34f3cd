// Shared Stryker settings for `npm run mutate` (scripts/mutate.mjs): the
// command runner over one area's own fast uvu tests (scripts/test.mjs with a
// path pattern, stopping at the first failure), one mutant at a time (the
// machine is shared), mutant schemata compiled once by tsc (typescript 7 has
// no compiler API, so @stryker-mutator/typescript-checker cannot run: a
// mutant that does not type-check is run anyway and is usually killed).
export function area(name, mutate, testPattern) {
  return {
    $schema: '../node_modules/@stryker-mutator/core/schema/stryker-schema.json',
    testRunner: 'command',
    commandRunner: { command: `PVMMU_TEST_BAIL=1 node scripts/test.mjs '${testPattern}'` },
    buildCommand: 'tsc -p tsconfig.json',
    mutate,
    // Stryker's tsconfig rewriting needs the TypeScript compiler API, which
    // typescript 7 does not have; tsconfig.json needs no rewriting (no
    // extends or references), so point Stryker at no file.
    tsconfigFile: 'stryker/no-tsconfig.json',
    disableTypeChecks: '{emulator,hypervisor,guest-kernel,tools}/**/*.ts',
    coverageAnalysis: 'off',
    concurrency: 1,
    timeoutMS: 5000,
    timeoutFactor: 2,
    ignorePatterns: ['dist', 'reports', 'tmp', 'tools/bench/c', '*.cpuprofile', '*.heapsnapshot'],
    tempDirName: '.stryker-tmp',
    cleanTempDir: 'always',
    reporters: ['clear-text', 'progress-append-only', 'json'],
    jsonReporter: { fileName: `reports/mutation/${name}.json` },
    clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0 },
  };
}
