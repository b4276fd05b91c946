// The shared vectors in protocol/vectors.json, checked from the TS side (pytest checks them from Python).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { OP_ARGS, OP_NAMES } from "../ts/bridge/ops.js";
import { ModulationTable, SHAPES } from "../ts/bridge/shapes.js";
import { ROOT } from "../ts/paths.js";
import { NDArray, SPEC, VERSION, pack, unpack, type DType } from "../ts/protocol.js";

const VECTORS = JSON.parse(readFileSync(join(ROOT, "protocol", "vectors.json"), "utf8"));

function fromJson(v: any): any {
  if (v && typeof v === "object" && "$nd" in v && "fill" in v) {
    const { fill, ...rest } = v; // a large array written compactly
    return fromJson({ ...rest, data: Array(v.shape.reduce((a: number, b: number) => a * b, 1)).fill(fill) });
  }
  if (v && typeof v === "object" && "$nd" in v) {
    const dtype = v.$nd as DType;
    const ctor = {
      float32: Float32Array,
      float64: Float64Array,
      int8: Int8Array,
      int16: Int16Array,
      int32: Int32Array,
      uint8: Uint8Array,
      uint16: Uint16Array,
      uint32: Uint32Array,
      bool: Uint8Array,
    }[dtype as Exclude<DType, "int64">];
    const data = dtype === "int64" ? BigInt64Array.from(v.data.map(BigInt)) : ctor.from(v.data.map(Number));
    return new NDArray(dtype, v.shape, data);
  }
  if (v && typeof v === "object" && "$bin" in v) return Buffer.from(v.$bin, "hex");
  if (Array.isArray(v)) return v.map(fromJson);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromJson(x)]));
  return v;
}

function toJson(v: any): any {
  if (v instanceof NDArray) return { $nd: v.dtype, shape: v.shape, data: v.dtype === "bool" ? v.toNumbers().map(Boolean) : v.toNumbers() };
  if (v instanceof Uint8Array) return { $bin: Buffer.from(v).toString("hex") };
  if (Array.isArray(v)) return v.map(toJson);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJson(x)]));
  return v;
}

describe("wire protocol", () => {
  it("vectors are for this protocol version", () => {
    expect(VECTORS.protocol).toBe(VERSION);
  });

  for (const vec of VECTORS.vectors) {
    it(`vector ${vec.name}: TS encodes the same frames as Python and decodes them back`, () => {
      const hex = (frames: Uint8Array[]) => frames.map((f) => Buffer.from(f).toString("hex"));
      const frames = [vec.hex, ...vec.frames].map((h: string) => Buffer.from(h, "hex"));
      expect(hex(pack(fromJson(vec.value)))).toEqual(hex(frames));
      expect(toJson(unpack(frames))).toEqual(toJson(fromJson(vec.value)));
    });
  }

  it("an undefined optional argument goes as nil, which Python reads as None", () => {
    const [body] = pack({ id: 1, flag: undefined });
    expect(Buffer.from(body).includes(Buffer.from([0xa4, ...Buffer.from("flag"), 0xc0]))).toBe(true);
  });

  it("large arrays decode into typed arrays", () => {
    const a = NDArray.float32(
      Array.from({ length: 250_000 }, (_, i) => i * 0.5),
      [1000, 250],
    );
    const message = pack({ a });
    expect(message).toHaveLength(2); // 1 MB goes out of band
    const b = unpack(message).a as NDArray;
    expect(b.data).toBeInstanceOf(Float32Array);
    expect(b.data.buffer).toBe(message[1].buffer); // a view of the frame, not a copy
    expect(b.shape).toEqual([1000, 250]);
    expect(b.row(999)[249]).toBe(249_999 * 0.5);
  });

  it("a payload that lies about its shape is refused", () => {
    const lying = Buffer.from(pack(NDArray.float32([1, 2, 3, 4]))[0]);
    lying[lying.length - 16 - 4] = 5; // dims[0] = 5 with data for 4
    expect(() => unpack([lying])).toThrow(/does not match shape/);
    const big = pack(new NDArray("float32", [20_000], new Float32Array(20_000)));
    expect(() => unpack([big[0]])).toThrow(/names frame 1, the message has 1 frames/);
  });

  it("every op in protocol.json has a typed entry and vice versa", () => {
    expect([...OP_NAMES].sort()).toEqual(Object.keys(SPEC.ops).sort());
  });
});

const names = (o: object | undefined) => Object.keys(o ?? {}).sort();

/** A zod object's keys as protocol.json lists a shape's: required (fields) and those that may be left out. */
function keysOf(schema: z.ZodObject) {
  const entries = Object.entries(schema.shape);
  const optional = (s: z.ZodType) => s._zod.optin === "optional"; // what makes the inferred key `?`
  return {
    fields: entries
      .filter(([, s]) => !optional(s))
      .map(([k]) => k)
      .sort(),
    optional_fields: entries
      .filter(([, s]) => optional(s))
      .map(([k]) => k)
      .sort(),
  };
}

describe("one typed contract: protocol.json against the TS declarations", () => {
  // OP_ARGS is checked against OpTable's types by the compiler (ts/bridge/ops.ts), so this ties OpTable to protocol.json
  for (const op of OP_NAMES)
    it(`${op}: OP_ARGS lists protocol.json's args and optional_args`, () => {
      const spec = SPEC.ops[op];
      expect({ args: [...OP_ARGS[op].args].sort(), optional_args: [...OP_ARGS[op].optional_args].sort() }).toEqual({
        args: names(spec.args),
        optional_args: names(spec.optional_args),
      });
    });

  it("ts/bridge/shapes.ts declares each shape of protocol.json, and no other", () => {
    expect(Object.keys(SHAPES).sort()).toEqual(
      Object.keys(SPEC.shapes)
        .filter((k) => !k.startsWith("$"))
        .sort(),
    );
  });

  for (const [name, schema] of Object.entries(SHAPES))
    it(`shape ${name}: the zod schema's required and optional keys are protocol.json's`, () => {
      const spec = SPEC.shapes[name];
      expect(keysOf(schema)).toEqual({ fields: names(spec.fields), optional_fields: names(spec.optional_fields) });
    });

  it("the modulation schema accepts a table as identify builds it and refuses a key protocol.json does not list", () => {
    const state = { obs: NDArray.float32([0, 0, 0, 0]), action: 1, reward: 0.5, snapshot: {} };
    const table = {
      ...{
        variant: "RA",
        radius: 0.1,
        fire_on: "entry",
        reset_prob: 0.25,
        reward_scale: 1,
        reward_unit: 2,
        action_tolerance: 0.5,
        seed: 0,
      },
      states: [state],
    };
    expect(ModulationTable.safeParse(table).success).toBe(true);
    expect(ModulationTable.safeParse({ ...table, radious: 0.1 }).success).toBe(false);
    expect(ModulationTable.safeParse({ ...table, states: [{ ...state, acton: 1 }] }).success).toBe(false);
  });
});
