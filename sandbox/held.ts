/** Test control shared by both simulators: calls held mid-flight until a test lets them go. */

/**
 * Calls held by a "hold" fault: each waits until released or for at most `ms`. Tests use it to act
 * (edit a record, start another sync) while a sync is in the middle of a given call.
 */
export function heldCalls(sleep: (ms: number) => Promise<unknown>) {
  const releases = new Set<() => void>();
  let arrivals: Array<() => void> = [];
  return {
    async hold(ms: number): Promise<void> {
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      releases.add(release);
      for (const wake of arrivals.splice(0)) wake();
      await Promise.race([released, sleep(ms)]);
      releases.delete(release);
    },
    when(ms: number): Promise<boolean> {
      if (releases.size) return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(() => {
          arrivals = arrivals.filter((w) => w !== wake);
          resolve(false);
        }, ms);
        arrivals.push(wake);
      });
    },
    release(): void {
      for (const r of [...releases]) r();
      releases.clear();
    },
  };
}
