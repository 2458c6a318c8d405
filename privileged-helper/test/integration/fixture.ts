/**
 * A describe block's real helper and client: started before its tests, and the helper destroyed after
 * them even when a test failed (kept apart from harness.ts, which the benchmarks use outside vitest).
 */
import { afterAll, beforeAll } from 'vitest';
import type { HelperClient } from '../../src/protocol/client.js';
import { TestHelper } from './harness.js';

export function useHelper(set: (helper: TestHelper, client: HelperClient) => void): void {
  let helper: TestHelper | undefined;
  let client: HelperClient | undefined;
  beforeAll(async () => {
    helper = await TestHelper.start();
    client = await helper.client();
    set(helper, client);
  });
  afterAll(async () => {
    client?.close();
    await helper?.destroy();
  });
}
