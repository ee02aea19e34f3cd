/**
 * The HTML report renders in a real browser: headless Chromium (Debian's
 * `chromium`) draws it to a PNG, and at 1400 px the page needs no horizontal
 * scrolling. Skipped, saying so, where Chromium is not installed (CI may
 * lack it).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cli = join(process.cwd(), 'dist/tools/cli.js');
const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

function browser(args: string[]) {
  const ud = mkdtempSync(join(tmpdir(), 'pvmmu-chromium-'));
  try {
    return spawnSync(chromium!, [...FLAGS, `--user-data-dir=${ud}`, ...args], { encoding: 'utf8', timeout: 90_000 });
  } finally {
    rmSync(ud, { recursive: true, force: true });
  }
}

if (chromium === undefined) {
  test('report renders in headless Chromium (SKIPPED: chromium is not installed; apt-get install chromium)', () => {
    process.stdout.write('\n  skipped: no chromium on this machine, the report was not rendered\n');
  });
} else {
  test('report renders in headless Chromium: a screenshot, and no horizontal overflow at 1400 px', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pvmmu-render-'));
    const t = join(dir, 'd.json');
    assert.is(spawnSync(process.execPath, [cli, 'compare', 'tools/workloads/default.pvw', '--trace', t]).status, 0);
    const html = join(dir, 'r.html');
    assert.is(spawnSync(process.execPath, [cli, 'report', join(dir, 'd.native.json'), join(dir, 'd.xen.json'), '-o', html]).status, 0);
    const png = join(dir, 'r.png');
    browser(['--window-size=1400,2000', `--screenshot=${png}`, `file://${html}`]);
    assert.ok(existsSync(png), 'chromium wrote a screenshot');
    assert.ok(statSync(png).size > 20_000, 'the screenshot is not blank');
    const probe = join(dir, 'probe.html');
    writeFileSync(probe, readFileSync(html, 'utf8').replace('</body>', '<script>const inner=[...document.querySelectorAll(".scroll")].some((e)=>e.scrollWidth>e.clientWidth);document.title="SW="+Math.max(document.documentElement.scrollWidth,inner?1e6:0)+" CW="+document.documentElement.clientWidth+" SVG="+document.querySelectorAll("svg").length</script></body>'));
    const dom = browser(['--window-size=1400,2000', '--dump-dom', `file://${probe}`]).stdout;
    const m = /<title>SW=(\d+) CW=(\d+) SVG=(\d+)<\/title>/.exec(dom);
    assert.ok(m, 'the page loaded and ran');
    assert.ok(Number(m![1]) <= Number(m![2]), `no horizontal scrolling at 1400 px (scroll width ${m![1]}, client width ${m![2]})`);
    assert.ok(Number(m![3]) >= 6, 'the charts are there');
  });
}

test.run();
