/**
 * The worker's Prometheus metrics (prom-client), on its own registry so several workers can share a
 * process (tests, the local network demo).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { foreignRequest, isLoopbackHost, listen } from "../blob.js";

export class WorkerMetrics {
  readonly registry = new Registry();
  readonly jobsClaimed = new Counter({ name: "meshwork_jobs_claimed_total", help: "Jobs this worker claimed", registers: [this.registry] });
  readonly jobsCompleted = new Counter({ name: "meshwork_jobs_completed_total", help: "Jobs that settled in this worker's favour", registers: [this.registry] });
  readonly jobsFailed = new Counter({
    name: "meshwork_jobs_failed_total",
    help: "Jobs that ended without pay for this worker, by reason",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly jobsRejected = new Counter({
    name: "meshwork_jobs_rejected_total",
    help: "Jobs considered and not claimed, by reason",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly audits = new Counter({
    name: "meshwork_audits_total",
    help: "Audits of this worker's jobs and audits it ran, by role and outcome",
    labelNames: ["role", "outcome"] as const,
    registers: [this.registry],
  });
  readonly earnings = new Gauge({
    name: "meshwork_market_balance",
    help: "This worker's internal market balance (earnings not yet withdrawn), smallest units",
    labelNames: ["token"] as const,
    registers: [this.registry],
  });
  readonly gasSpent = new Counter({ name: "meshwork_gas_spent_wei_total", help: "Native currency spent on gas, wei", registers: [this.registry] });
  readonly jobDuration = new Histogram({
    name: "meshwork_job_duration_seconds",
    help: "From claim to settlement",
    buckets: [1, 5, 15, 60, 300, 900, 3600, 4 * 3600],
    registers: [this.registry],
  });
  readonly computeDuration = new Histogram({
    name: "meshwork_compute_duration_seconds",
    help: "Running a job's chunks (or an audit's sample)",
    buckets: [0.01, 0.1, 0.5, 1, 5, 30, 120, 600],
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({ name: "meshwork_jobs_in_flight", help: "Jobs claimed and not finished", registers: [this.registry] });
  readonly active = new Gauge({
    name: "meshwork_provider_active",
    help: "1 while this node may take jobs (registered, staked at least the minimum, not jailed), 0 otherwise",
    registers: [this.registry],
  });
  readonly blobDirFull = new Counter({
    name: "meshwork_blob_dir_full_total",
    help: "Times the blob directory had no room for a job's blobs within maxBlobDirBytes, even once it removed what it could (at most once a minute; jobs are passed over meanwhile)",
    registers: [this.registry],
  });
  readonly blobBytes = new Gauge({ name: "meshwork_blob_bytes", help: "Bytes in this node's blob directory at its last prune, or when it last made room", registers: [this.registry] });
  readonly blobsPruned = new Counter({
    name: "meshwork_blobs_pruned_total",
    help: "Blobs removed from this node's blob directory: unused for keepBlobsSec, or to keep it within maxBlobDirBytes",
    registers: [this.registry],
  });
  readonly rpcErrors = new Counter({ name: "meshwork_rpc_errors_total", help: "Failed polls (retried)", registers: [this.registry] });
  readonly escalations = new Counter({
    name: "meshwork_disputes_escalated_total",
    help: "Disputes this node took part in that went to governance, by its role",
    labelNames: ["role"] as const,
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Serves `/metrics` on 127.0.0.1:`port` (0 picks a free port). On a loopback `host`, a request from a
   * web page of another site or naming another host (DNS rebinding) gets 403, as the blob server's
   * (see `foreignRequest` in blob.ts).
   * A metric that cannot be collected gets 500, and `onError` is told, as of an error of the listening
   * socket once it listens (without it, such an error would end the process).
   * @throws {MeshworkConfigError} when it cannot listen there (the port in use: `details.code` EADDRINUSE).
   */
  async serve(port: number, host = "127.0.0.1", onError?: (error: unknown) => void): Promise<{ url: string; server: Server }> {
    const loopback = isLoopbackHost(host);
    const server = createServer((req, res) => {
      if (loopback && foreignRequest(req)) {
        res.writeHead(403).end();
        return;
      }
      if (req.url !== "/metrics") {
        res.writeHead(404).end();
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": this.registry.contentType }).end(text),
        (error) => {
          onError?.(error);
          res.writeHead(500).end();
        },
      );
    });
    await listen(server, port, host, "the metrics server");
    server.on("error", (error) => onError?.(error));
    const { port: bound } = server.address() as AddressInfo;
    return { url: `http://${host}:${bound}/metrics`, server };
  }
}
