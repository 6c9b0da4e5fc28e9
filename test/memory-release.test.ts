/**
 * lib/memory-release.ts: the heap's kept memory goes back to the OS once RELEASE_AFTER_MS pass
 * without a large output made or collected, once per idle spell, and the timer never holds the
 * process. (test/leaks.test.ts checks the RSS that this gives back.)
 */
import { afterEach, beforeEach, expect, test, vi } from 'vitest';

import { IdleRelease, RELEASE_AFTER_MS } from '../lib/memory-release';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

test('releases once, RELEASE_AFTER_MS after the last output made', () => {
  const release = vi.fn();
  const idle = new IdleRelease(release);
  idle.made(new ArrayBuffer(8));
  vi.advanceTimersByTime(RELEASE_AFTER_MS - 1);
  expect(release).not.toHaveBeenCalled();
  idle.made(new ArrayBuffer(8)); // restarts the wait
  vi.advanceTimersByTime(RELEASE_AFTER_MS - 1);
  expect(release).not.toHaveBeenCalled();
  vi.advanceTimersByTime(1);
  expect(release).toHaveBeenCalledTimes(1);
  vi.advanceTimersByTime(10 * RELEASE_AFTER_MS);
  expect(release).toHaveBeenCalledTimes(1); // nothing new: no second release
  idle.touch(); // a collected output starts another wait
  vi.advanceTimersByTime(RELEASE_AFTER_MS);
  expect(release).toHaveBeenCalledTimes(2);
});

test('its timer does not keep the process alive', () => {
  const spy = vi.spyOn(globalThis, 'setTimeout');
  new IdleRelease(() => {}).made(new ArrayBuffer(8));
  const timer = spy.mock.results[0]!.value as NodeJS.Timeout;
  expect(timer.hasRef()).toBe(false);
  spy.mockRestore();
});
