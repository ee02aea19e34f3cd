/**
 * A drop-in replacement for uvu's `suite` whose hooks cannot fail silently
 * (issue 14, gap 7). uvu runs `after.each` inside its own error handling and
 * returns from a `finally` block, so a hook that throws is dropped, no FAIL
 * line is printed and the rest of the suite does not run. Here the `each`
 * hooks run inside every test's own body: a hook that throws fails that test,
 * under its name, with the hook's message (after the test's own failure when
 * both fail), and the next test still runs. A throwing `before` hook fails
 * every test of the suite by name; `after` hooks run as a final named test.
 * (scripts/uvu-run.mjs is the safety net for suites that use uvu directly.)
 */
import { suite as uvuSuite, type Callback, type Test } from 'uvu';

type Ctx = Record<string, any>;

export function suite<T extends Ctx = Ctx>(name: string, context?: T): Test<T> {
  const s = uvuSuite<T>(name, context);
  const before: Callback<T>[] = [];
  const bEach: Callback<T>[] = [];
  const aEach: Callback<T>[] = [];
  const after: Callback<T>[] = [];
  let setupError: unknown = null;
  let setupDone = false;

  const wrap = (handler: Callback<T>): Callback<T> => async (ctx) => {
    if (!setupDone) {
      setupDone = true;
      try {
        for (const h of before) await h(ctx);
      } catch (e) {
        setupError = e;
      }
    }
    if (setupError !== null) throw new Error(`the suite's before hook failed: ${msg(setupError)}`);
    let err: unknown = null;
    try {
      for (const h of bEach) await h(ctx);
      await handler(ctx);
    } catch (e) {
      err = e;
    }
    for (const h of aEach) {
      try {
        await h(ctx);
      } catch (e) {
        if (err === null) err = new Error(`after.each hook failed: ${msg(e)}`);
        else if (err instanceof Error) err.message += `\n    and then the after.each hook failed: ${msg(e)}`;
      }
    }
    if (err !== null) throw err;
  };

  const t = ((testName: string, handler: Callback<T>) => s(testName, wrap(handler))) as Test<T>;
  t.only = (testName: string, handler: Callback<T>) => s.only(testName, wrap(handler));
  t.skip = (testName?: string, handler?: Callback<T>) => s.skip(testName, handler);
  const hook = (list: Callback<T>[]) => {
    const h = ((fn: Callback<T>) => void list.push(fn)) as Test<T>['before'];
    return h;
  };
  t.before = hook(before);
  t.before.each = (fn: Callback<T>) => void bEach.push(fn);
  t.after = hook(after);
  t.after.each = (fn: Callback<T>) => void aEach.push(fn);
  t.run = () => {
    if (after.length > 0) {
      s('(after hooks)', async (ctx) => {
        for (const h of after) await h(ctx);
      });
    }
    s.run();
  };
  return t;
}

function msg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
