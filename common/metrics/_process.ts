/**
 * Process metrics computed on scrape (no timers, no observers, so nothing leaks between tests or
 * keeps a process alive). prom-client's own defaults are not used: its `nodejs_active_*_total`
 * gauges fail promtool's naming lint, and its event-loop and GC monitors start background work
 * per registry.
 * @module
 */
import process from "node:process";
import { Counter, Gauge, type Registry } from "prom-client";

/** Registers process_cpu_*, process_start_time_seconds, memory and fd metrics on `registry`. */
export function registerProcessMetrics(registry: Registry): void {
  const registers = [registry];
  // Counting from zero (not from registration) makes the totals absolute, as Prometheus expects.
  let last = { user: 0, system: 0 };
  new Counter({
    name: "process_cpu_user_seconds_total",
    help: "Total user CPU time spent in seconds.",
    registers,
    collect() {
      const now = process.cpuUsage();
      const du = Math.max(0, now.user - last.user) / 1e6;
      const ds = Math.max(0, now.system - last.system) / 1e6;
      last = now;
      this.inc(du);
      system.inc(ds);
      total.inc(du + ds);
    },
  });
  const system = new Counter({
    name: "process_cpu_system_seconds_total",
    help: "Total system CPU time spent in seconds.",
    registers,
  });
  const total = new Counter({
    name: "process_cpu_seconds_total",
    help: "Total user and system CPU time spent in seconds.",
    registers,
  });
  const startSeconds = Math.round((Date.now() - performance.now()) / 1000);
  new Gauge({
    name: "process_start_time_seconds",
    help: "Start time of the process since unix epoch in seconds.",
    registers,
    collect() {
      this.set(startSeconds);
    },
  });
  new Gauge({
    name: "process_resident_memory_bytes",
    help: "Resident memory size in bytes.",
    registers,
    collect() {
      this.set(Deno.memoryUsage().rss);
    },
  });
  new Gauge({
    name: "process_heap_used_bytes",
    help: "JavaScript heap in use, in bytes.",
    registers,
    collect() {
      this.set(Deno.memoryUsage().heapUsed);
    },
  });
  new Gauge({
    name: "process_heap_total_bytes",
    help: "JavaScript heap reserved, in bytes.",
    registers,
    collect() {
      this.set(Deno.memoryUsage().heapTotal);
    },
  });
  new Gauge({
    name: "process_open_fds",
    help: "Number of open file descriptors (Linux only).",
    registers,
    collect() {
      try {
        let n = 0;
        for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
        this.set(n);
      } catch {
        // Not Linux, or /proc is not readable: leave the gauge without a sample.
      }
    },
  });
}
