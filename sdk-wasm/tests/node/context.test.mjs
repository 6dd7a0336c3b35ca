// The browser context rule (detectBrowser in js/index.js, as built into pkg/) on real
// userAgentData brand lists and user-agent strings: tests/fixtures/user_agents.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { pkg } from './support.mjs';

// The shipped package exports it from index.js; the web build from its context module.
const detectBrowser = (await import(new URL('index.js', pkg))).detectBrowser || (await import(new URL('context.js', pkg))).detectBrowser;

const fixtures = JSON.parse(await readFile(new URL('../fixtures/user_agents.json', import.meta.url), 'utf8'));

for (const c of fixtures.cases) {
  test(c.name, () => assert.deepEqual(detectBrowser(c.userAgent, c.userAgentData), c.expected));
}

test('a GREASE filler brand is never reported, whatever its punctuation', () => {
  const ua = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36';
  for (const grease of fixtures.grease) {
    for (const brands of [[{ brand: grease, version: '8' }, { brand: 'Chromium', version: '156' }],
      [{ brand: 'Chromium', version: '156' }, { brand: grease, version: '99' }]]) {
      assert.equal(detectBrowser(ua, { brands, platform: 'Linux' }).browser, 'Chromium', grease);
    }
    // Alone it is no brand at all: the UA string decides.
    assert.equal(detectBrowser(ua, { brands: [{ brand: grease, version: '8' }], platform: 'Linux' }).browser, 'Google Chrome', grease);
  }
});

test('odd input gives empty strings, never a throw', () => {
  const empty = { browser: '', browser_version: '', os: '', os_version: '' };
  for (const [ua, d] of [[undefined, undefined], [null, null], ['', {}], [42, { brands: [] }], ['x', { platform: '' }]]) {
    assert.deepEqual(detectBrowser(ua, d), empty);
  }
  assert.deepEqual(detectBrowser('', { brands: [{ brand: 'Chromium', version: 156 }], platform: 'Unknown' }),
    { browser: 'Chromium', browser_version: '156', os: '', os_version: '' });
});
