import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { RunnerClient } from '../../src/core/execution/runner';
import { encodeFrame, FrameDecoder, FrameType } from '../../src/core/execution/runner/frames';

// The host side of the runner protocol, without the runner: the C runner itself is tested in
// test/integration/runner-supervisor.test.ts.

describe('execution: runner client frames', () => {
  it('reassembles frames split at every byte and batched together', () => {
    const frames = [
      encodeFrame(FrameType.STDOUT, 1, Buffer.from('hello')),
      encodeFrame(FrameType.PONG, 0xffffffff),
      encodeFrame(FrameType.STDERR, 7, Buffer.alloc(70_000, 'z')),
      encodeFrame(FrameType.EXIT, 1, Buffer.from('0 0 0 0')),
    ];
    const wire = Buffer.concat(frames);
    for (const size of [1, 2, 9, 10, 4096, wire.length]) {
      const seen: Array<[number, number, string]> = [];
      const decoder = new FrameDecoder((type, id, payload) => seen.push([type, id, payload.toString()]));
      for (let i = 0; i < wire.length; i += size) decoder.push(wire.subarray(i, i + size));
      assert.deepEqual(seen, [
        [FrameType.STDOUT, 1, 'hello'],
        [FrameType.PONG, 0xffffffff, ''],
        [FrameType.STDERR, 7, 'z'.repeat(70_000)],
        [FrameType.EXIT, 1, '0 0 0 0'],
      ]);
    }
  });

  it('rejects oversized frames, which the client treats as a lost connection', async () => {
    const decoder = new FrameDecoder(() => {});
    const header = Buffer.alloc(9);
    header[0] = FrameType.STDOUT;
    header.writeUInt32BE(2 * 1024 * 1024, 5);
    assert.throws(() => decoder.push(header), /exceeds the 1 MiB limit/);

    const input = new PassThrough();
    const output = new PassThrough();
    const client = new RunnerClient(input, output);
    const proc = client.spawn({ argv: ['true'], cwd: '/', env: {} });
    output.write(header);
    assert.equal((await proc.exited).error, 'runner connection lost');
    assert.equal(client.closed, true);
  });

  it('maps STARTED, output, ERROR and EXIT frames onto the process', async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const client = new RunnerClient(input, output);
    const proc = client.spawn({ argv: ['x'], cwd: '/', env: {} });
    let stdout = '';
    proc.on('stdout', (data: Buffer) => (stdout += data.toString()));
    const pid = new Promise<number>((resolve) => proc.once('started', resolve));
    output.write(encodeFrame(FrameType.STARTED, proc.id, Buffer.from('4242')));
    output.write(encodeFrame(FrameType.STDOUT, proc.id, Buffer.from('out')));
    output.write(encodeFrame(FrameType.ERROR, proc.id, Buffer.from('boom')));
    output.write(encodeFrame(FrameType.EXIT, proc.id, Buffer.from('-1 10 1 0')));
    assert.equal(await pid, 4242);
    const exit = await proc.exited;
    assert.equal(stdout, 'out');
    assert.deepEqual(exit, {
      exitCode: null,
      signal: 'SIGUSR1',
      truncated: true,
      oomKilled: false,
      error: 'boom',
    });
    const frame = input.read() as Buffer;
    assert.equal(frame[0], FrameType.SPAWN);
    assert.equal(frame.subarray(9).toString(), '/\x001\x00x\x000\x000\x000\x00');
  });
});
