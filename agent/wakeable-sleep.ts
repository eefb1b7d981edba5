/** A sleep that can be cut short: by a nudge from the coordinator, or by the agent stopping. */
export class WakeableSleep {
  private wakeUp: (() => void) | null = null;

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.wakeUp === done) this.wakeUp = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  /** Ends the sleep under way, if any; a wake with nobody asleep is not remembered. */
  wake(): void {
    this.wakeUp?.();
  }
}
