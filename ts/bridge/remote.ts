// A sidecar that runs elsewhere (a Ray actor in a sweep, ../sweep/cluster.ts), reached over TCP and encrypted and
// authenticated by CURVE. We own no process: Ray does. Its death shows only as a dropped connection, which fails
// every pending request with SidecarDiedError; ZMTP heartbeats find a node that vanished without closing it.
import { SidecarClient, type ClientOptions } from "./client.js";
import { SidecarDiedError } from "./errors.js";

/** What a client needs to reach a CURVE server: its public key (pinned) and our own key pair (z85). */
export interface ClientCurve {
  serverPublic: string;
  publicKey: string;
  secretKey: string;
}

export class RemoteSidecar extends SidecarClient {
  private connected = false;

  private constructor(endpoint: string, curve: ClientCurve, opts: ClientOptions) {
    super(opts, {
      curveServerKey: curve.serverPublic,
      curvePublicKey: curve.publicKey,
      curveSecretKey: curve.secretKey,
      // ZMTP heartbeats: a peer that vanished without closing its connection (a lost node) shows as a disconnect
      heartbeatInterval: 2000,
      heartbeatTimeout: 10000,
    });
    this.dealer.events.on("handshake", () => (this.connected = true));
    this.dealer.events.on("disconnect", this.lost(endpoint, "disconnected"));
    // a wrong key never gets an answer, only these events: without them the handshake would wait out its timeout
    this.dealer.events.on("handshake:error:auth", this.lost(endpoint, "refused our CURVE client key"));
    this.dealer.events.on("handshake:error:protocol", this.lost(endpoint, "failed the CURVE handshake"));
  }

  /** Connect to the actor at `endpoint` (tcp://HOST:PORT) and say hello. */
  static async connect(endpoint: string, curve: ClientCurve, opts: ClientOptions = {}): Promise<RemoteSidecar> {
    return new RemoteSidecar(endpoint, curve, opts).open(() => endpoint);
  }

  private lost(endpoint: string, why: string): () => void {
    return () => {
      if (this.closing) return;
      this.fail(
        new SidecarDiedError(
          this.connected
            ? `remote sidecar at ${endpoint} ${why}`
            : `cannot reach the sidecar at ${endpoint}: ${why} (is the key pinned for it the right one?)`,
          "",
        ),
      );
      this.cleanup();
    };
  }

  get alive(): boolean {
    return !this.deadError && !this.closed;
  }

  /** Drop the connection (the actor itself is Ray's to stop); pending requests fail with SidecarDiedError. */
  kill(): void {
    this.fail(new SidecarDiedError(`the connection to the sidecar at ${this.endpoint} was closed`, ""));
    this.cleanup();
  }
}
