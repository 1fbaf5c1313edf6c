/**
 * The configurations of docs/topologies.md (examples/topologies/*.json), as
 * the namespace tests run them: read unchanged, with the interface names of
 * the document mapped onto the test topology's veths. Every interface the
 * file names must be mapped (a name the test does not know fails the test),
 * so the file and the test stay in step.
 */
import { REPO } from "../../lab/netns.ts";

/** A configuration as the relay harness takes it. */
export type TopologyConfig = Record<string, unknown> & { rules: Record<string, unknown>[] };

/** Directory of the topology configurations. */
export const TOPOLOGIES_DIR = `${REPO}/examples/topologies`;

/**
 * Read `examples/topologies/<file>` and rename its interfaces with `rename`
 * (document name → test interface): rule inputs, outputs, `interfaces` keys.
 */
export async function topologyConfig(
  file: string,
  rename: Record<string, string>,
): Promise<TopologyConfig> {
  const c = JSON.parse(await Deno.readTextFile(`${TOPOLOGIES_DIR}/${file}`)) as TopologyConfig;
  const map = (name: unknown): string => {
    const to = rename[String(name)];
    if (to === undefined) throw new Error(`${file}: interface "${name}" is not mapped by the test`);
    return to;
  };
  delete c.$schema;
  for (const r of c.rules) {
    const inputs = (r.inputs ?? [r.input]) as { interface: string }[];
    for (const input of inputs) input.interface = map(input.interface);
    for (const o of r.outputs as { interface: string }[]) o.interface = map(o.interface);
  }
  if (c.interfaces) {
    c.interfaces = Object.fromEntries(
      Object.entries(c.interfaces as Record<string, unknown>).map(([k, v]) => [map(k), v]),
    );
  }
  return c;
}
