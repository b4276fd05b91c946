// `ultra fidelity --run DIR`: StateMask's fidelity test of a finished run's critical states (no training).
import { withSidecar, type SidecarOptions } from "../bridge/sidecar.js";
import { fidelity as run, type FidelityOptions, type FidelityResult } from "../ultra/fidelity.js";

export async function fidelity(dir: string, o: FidelityOptions & { sidecar?: SidecarOptions }): Promise<FidelityResult> {
  return withSidecar(o.sidecar ?? {}, (sc) => run(dir, o, sc));
}
