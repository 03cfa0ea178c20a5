/**
 * The mount check behind the process listing: mounts over /proc/<pid> (a way to hide a process
 * from ps without a kernel module) and a /proc that is not procfs.
 */
import { describe, expect, it } from 'vitest';
import { procMounts } from '../../src/collect/run/phases/proc-mounts.js';

// Lines as a containerd container shows them (masks and read-only paths included).
const CONTAINER = [
  '1480 1400 0:190 / / rw,relatime master:600 - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w',
  '1481 1480 0:193 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw',
  '1482 1480 0:194 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755',
  '1401 1481 0:193 /bus /proc/bus ro,nosuid,nodev,noexec,relatime - proc proc rw',
  '1402 1481 0:193 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw',
  '1403 1481 0:194 /null /proc/kcore rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755',
  '1404 1481 0:198 / /proc/scsi ro,relatime - tmpfs tmpfs ro',
].join('\n');

describe('procMounts', () => {
  it("a container's own masks and read-only paths are not reported", () => {
    expect(procMounts(CONTAINER, '/proc')).toEqual({ mounts: [], unparsed: 0 });
  });

  it('a bind over /proc/<pid> or a file in it names the pid', () => {
    const r = procMounts(
      `${CONTAINER}\n1500 1481 254:0 /tmp/e /proc/4242 rw,relatime - ext4 /dev/vda rw\n1501 1481 254:0 /x /proc/7/cmdline rw shared:3 master:2 - ext4 /dev/vda rw\n`,
      '/proc',
    );
    expect(r.mounts).toEqual([
      { mountPoint: '/proc/4242', fs: 'ext4 /dev/vda', pid: '4242' },
      { mountPoint: '/proc/7/cmdline', fs: 'ext4 /dev/vda', pid: '7' },
    ]);
  });

  it('/proc whose topmost mount is not procfs is reported; a procfs mounted again on top is not', () => {
    const over = `${CONTAINER}\n1600 1481 0:300 / /proc rw - tmpfs none rw`;
    expect(procMounts(over, '/proc').mounts).toEqual([{ mountPoint: '/proc', fs: 'tmpfs none' }]);
    expect(procMounts(`${over}\n1601 1600 0:301 / /proc rw - proc proc rw`, '/proc').mounts).toEqual([]);
  });

  it('reads escaped mount points, another proc base, and counts lines that do not parse', () => {
    const r = procMounts(
      '10 1 0:5 / /host/proc rw - proc proc rw\n11 10 0:6 /a\\040b /host/proc/12 rw - tmpfs t\\040x rw\n12 1 0:7 / /proc/9 rw - tmpfs t rw\ngarbage\n13 1 0:8 / /x rw\n',
      '/host/proc/',
    );
    expect(r.mounts).toEqual([{ mountPoint: '/host/proc/12', fs: 'tmpfs t x', pid: '12' }]);
    expect(r.unparsed).toBe(2);
  });

  it('names that only start like a pid are not pids', () => {
    const r = procMounts(
      '1 0 0:1 / /proc/12abc rw - tmpfs t rw\n2 0 0:1 / /proc/self rw - tmpfs t rw',
      '/proc',
    );
    expect(r.mounts).toEqual([]);
  });
});
