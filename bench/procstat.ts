// Resource use of one process, read from /proc: resident memory (now and the kernel's high-water mark)
// and CPU seconds (user + system). Sampled on an interval so the steady state can be told from the peak.
import { readFileSync } from 'node:fs';

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux

export interface ProcSample {
  atMs: number;
  rssMiB: number;
  peakRssMiB: number;
  cpuSeconds: number;
}

export function sampleProcess(pid: number): ProcSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    // Fields after the command name, which is in parentheses and may hold spaces.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    return { atMs: Date.now(), rssMiB: kib('VmRSS') / 1024, peakRssMiB: kib('VmHWM') / 1024, cpuSeconds: ticks / CLOCK_TICKS_PER_SECOND };
  } catch {
    return undefined; // the process has exited
  }
}

export class ProcSampler {
  readonly samples: ProcSample[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly pid: number;
  constructor(pid: number, intervalMs = 500) {
    this.pid = pid;
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.sample();
  }

  sample(): ProcSample | undefined {
    const s = sampleProcess(this.pid);
    if (s) this.samples.push(s);
    return s;
  }

  /** The latest sample at or before `atMs`. */
  at(atMs: number): ProcSample | undefined {
    let found: ProcSample | undefined;
    for (const s of this.samples) if (s.atMs <= atMs) found = s;
    return found;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
