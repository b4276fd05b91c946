// The Ray side of a sweep: a local sidecar (the host) starts or joins the Ray cluster and launches one sidecar
// per trial as a Ray actor. Actors listen on TCP with CURVE only: the server key pair and our client key pair
// are made here for this sweep, the server key is pinned on our side, and an actor admits only our client key.
import { curveKeyPair } from "zeromq";
import { RemoteSidecar, type ClientCurve } from "../bridge/remote.js";
import { Sidecar, type SidecarOptions } from "../bridge/sidecar.js";
import type { CurveKeys, OpResult } from "../bridge/ops.js";

export type ClusterInfo = OpResult<"ray_init">;
export type ActorPlace = OpResult<"actor_start">;

export class RayCluster {
  private readonly server = curveKeyPair();
  private readonly client = curveKeyPair();

  private constructor(
    private readonly host: Sidecar,
    readonly info: ClusterInfo,
    private readonly opts: SidecarOptions,
  ) {}

  /** `address`: local (start Ray here, loopback), auto, or ray://HOST:PORT. `onLog`: the host's and Ray's log. */
  static async start(address: string, opts: SidecarOptions = {}): Promise<RayCluster> {
    // SIGTERM, never SIGKILL: the host then stops Ray, whose agents would outlive a killed driver
    const host = await Sidecar.start({ ...opts, requestTimeoutS: 900, stopSignal: "SIGTERM" });
    try {
      return new RayCluster(host, await host.call("ray_init", { address }, { timeoutS: 300 }), opts);
    } catch (e) {
      await host.close();
      throw e;
    }
  }

  /** Keys the actors get: the server pair and our public key (Ray passes them inside the cluster). */
  private get actorKeys(): CurveKeys {
    return { server_public: this.server.publicKey, server_secret: this.server.secretKey, client_public: this.client.publicKey };
  }

  /** What we connect with: the pinned server key and our own pair. */
  get clientCurve(): ClientCurve {
    return { serverPublic: this.server.publicKey, publicKey: this.client.publicKey, secretKey: this.client.secretKey };
  }

  /** A sidecar actor named `name` (unique in the sweep), connected. `sharedDir` must be writable on its node. */
  async sidecar(
    name: string,
    sharedDir: string,
    resources: { cpus: number; gpus: number },
  ): Promise<{ sc: RemoteSidecar; place: ActorPlace }> {
    const place = await this.host.call("actor_start", {
      name,
      curve: this.actorKeys,
      shared_dir: sharedDir,
      cpus: resources.cpus,
      gpus: resources.gpus,
      torch_threads: this.opts.torchThreads ?? 1,
    });
    try {
      return { sc: await RemoteSidecar.connect(place.endpoint, this.clientCurve, this.opts), place };
    } catch (e) {
      await this.kill(name);
      throw e;
    }
  }

  /** Stop an actor, dead or alive (a dead one is only forgotten). */
  async kill(name: string): Promise<void> {
    await this.host.call("actor_kill", { name }).catch(() => {});
  }

  /** The host as a sidecar: plots and other local work. */
  get local(): Sidecar {
    return this.host;
  }

  /** Disconnect; the actors end, and a local Ray instance stops. */
  close(): Promise<void> {
    return this.host.close(30);
  }
}
