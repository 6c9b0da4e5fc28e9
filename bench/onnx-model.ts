/**
 * A one-node ONNX model (BatchNormalization, inference mode, opset 15) built in code, so the
 * onnxruntime-node peer needs no model file. Only the protobuf fields the model uses are
 * encoded (field numbers from onnx/onnx.proto).
 */

/** Minimal protobuf writer: varints, length-delimited fields and 32-bit floats. */
class Proto {
  private readonly bytes: number[] = [];

  private varint(value: number) {
    let v = BigInt(value);
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v > 0n) byte |= 0x80;
      this.bytes.push(byte);
    } while (v > 0n);
  }
  private key(field: number, wire: number) {
    this.varint(field * 8 + wire);
  }
  int(field: number, value: number) {
    this.key(field, 0);
    this.varint(value);
    return this;
  }
  float(field: number, value: number) {
    this.key(field, 5);
    const b = new Uint8Array(new Float32Array([value]).buffer);
    this.bytes.push(...b);
    return this;
  }
  raw(field: number, data: Uint8Array) {
    this.key(field, 2);
    this.varint(data.length);
    for (const b of data) this.bytes.push(b);
    return this;
  }
  string(field: number, text: string) {
    return this.raw(field, new TextEncoder().encode(text));
  }
  message(field: number, m: Proto) {
    return this.raw(field, m.done());
  }
  done(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

const FLOAT = 1; // TensorProto.DataType.FLOAT

function tensor(name: string, data: Float32Array) {
  return new Proto()
    .int(1, data.length) // dims
    .int(2, FLOAT) // data_type
    .string(8, name)
    .raw(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength)); // raw_data
}

function valueInfo(name: string, shape: readonly number[]) {
  const dims = new Proto();
  for (const d of shape) dims.message(1, new Proto().int(1, d)); // Dimension.dim_value
  const tensorType = new Proto().int(1, FLOAT).message(2, dims);
  return new Proto().string(1, name).message(2, new Proto().message(1, tensorType));
}

/** Model bytes for Y = BatchNormalization(X, scale, B, mean, var) on an NCHW tensor. */
export function batchNormModel(
  shape: readonly number[],
  params: { scale: Float32Array; bias: Float32Array; mean: Float32Array; variance: Float32Array; eps: number },
): Uint8Array {
  const node = new Proto()
    .string(1, 'X')
    .string(1, 'scale')
    .string(1, 'B')
    .string(1, 'mean')
    .string(1, 'var')
    .string(2, 'Y')
    .string(3, 'bn')
    .string(4, 'BatchNormalization')
    .message(5, new Proto().string(1, 'epsilon').float(2, params.eps).int(20, 1)); // AttributeType.FLOAT
  const graph = new Proto()
    .message(1, node)
    .string(2, 'batchnorm')
    .message(5, tensor('scale', params.scale))
    .message(5, tensor('B', params.bias))
    .message(5, tensor('mean', params.mean))
    .message(5, tensor('var', params.variance))
    .message(11, valueInfo('X', shape))
    .message(12, valueInfo('Y', shape));
  return new Proto()
    .int(1, 8) // ir_version
    .string(2, 'batchnorm-bench')
    .message(7, graph)
    .message(8, new Proto().string(1, '').int(2, 15)) // opset_import
    .done();
}
