#!/usr/bin/env python3
"""card.py: makes and fills the SD card image of an lm3s6965evb device: postern's layout, its settings and its policy.

usage: scripts/card.py IMAGE [--create SIZE] [--reset] [--set "NAME=VALUE ..."] [--policy FILE]
                             [--clear-settings] [--clear-policy] [--show]

  --create SIZE   makes IMAGE when it does not exist: SIZE bytes (K, M or G
                  suffix), a power of two as QEMU's SD card wants (up to 2G an
                  SDSC card, 4G and more SDHC), blank but for postern's layout
  --reset         formats IMAGE anew: every stored file is gone (the settings
                  and policy too, unless given again)
  --set           the settings the policy reads as config.NAME, replacing those
                  on the card; values cannot hold spaces
  --policy FILE   the policy the device runs at boot (full-line comments are
                  left out, as in the baked one)
  --show          prints what the card holds

The layout is boards/lm3s6965evb/storage_sd.h's: superblock at sector 0,
settings at 1, the policy's header at 2 and its text from 3, 64 commit record
slots at 128, data clusters from 256. The device reads the settings and the
policy at boot; without them it runs the baked ones.
"""
import argparse
import os
import re
import struct
import sys
import zlib

SECTOR = 512
LBA_SUPER, LBA_SETTINGS, LBA_POLICY = 0, 1, 2
POLICY_SECTORS = 125
LBA_RECORDS, SLOTS, LBA_DATA = 128, 64, 256
CLUSTER_MIN, MAX_CLUSTERS = 8, 2048
MIN_SECTORS = 1024
MAGIC_SUPER = b"PSTNSD01"
MAGIC_SETTINGS = 0x54455350  # "PSET"
MAGIC_POLICY = 0x4C4F5050  # "PPOL"
MAGIC_RECORD = 0x31434552  # "REC1"


def parse_size(text):
    m = re.fullmatch(r"(\d+)([KkMmGg]?)", text)
    if not m:
        raise SystemExit("card.py: bad size %r" % text)
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()]


def cluster_sectors(sectors):
    cs = CLUSTER_MIN
    while (sectors - LBA_DATA) // cs > MAX_CLUSTERS:
        cs *= 2
    return cs


def write_at(f, lba, data):
    f.seek(lba * SECTOR)
    f.write(data)


def header(magic, text, extra=b""):
    body = struct.pack("<III", magic, len(text), zlib.crc32(text)) + extra
    return body.ljust(SECTOR, b"\0")


def format_card(f, size):
    sectors = size // SECTOR
    write_at(f, 0, bytes(SECTOR * LBA_DATA))
    if sectors < MIN_SECTORS:
        return  # too small: the device says so and stores nothing
    sb = MAGIC_SUPER + struct.pack("<III", 1, sectors, cluster_sectors(sectors))
    write_at(f, LBA_SUPER, (sb + struct.pack("<I", zlib.crc32(sb))).ljust(SECTOR, b"\0"))


def policy_text(path):
    """The policy with its full-line comments left out (lines kept empty), as scripts/bake.sh bakes it."""
    out = []
    for line in open(path, "rb").read().split(b"\n"):
        stripped = line.lstrip(b" \t")
        out.append(b"" if stripped.startswith(b"--") and not re.match(rb"--\[=*\[", stripped) else line)
    return b"\n".join(out)


def show(f, size):
    f.seek(0)
    head = f.read(SECTOR * LBA_DATA)
    print("card: %d bytes (%d sectors)" % (size, size // SECTOR))
    magic, text_len, crc = struct.unpack_from("<III", head, LBA_SETTINGS * SECTOR)
    if magic == MAGIC_SETTINGS:
        print("settings:", head[LBA_SETTINGS * SECTOR + 12:LBA_SETTINGS * SECTOR + 12 + text_len].decode())
    magic, text_len, crc = struct.unpack_from("<III", head, LBA_POLICY * SECTOR)
    if magic == MAGIC_POLICY:
        name = head[LBA_POLICY * SECTOR + 12:LBA_POLICY * SECTOR + 44].rstrip(b"\0").decode()
        print("policy: %s, %d bytes" % (name, text_len))
    for s in range(SLOTS):
        rec = head[(LBA_RECORDS + s) * SECTOR:(LBA_RECORDS + s + 1) * SECTOR]
        magic, seq, fsize = struct.unpack_from("<III", rec)
        if magic == MAGIC_RECORD and zlib.crc32(rec[:-4]) == struct.unpack_from("<I", rec, SECTOR - 4)[0]:
            print("slot %d: %s, %d bytes, seq %d" % (s, rec[16:96].rstrip(b"\0").decode(), fsize, seq))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image")
    ap.add_argument("--create", metavar="SIZE")
    ap.add_argument("--reset", action="store_true")
    ap.add_argument("--set", dest="settings")
    ap.add_argument("--policy")
    ap.add_argument("--clear-settings", action="store_true")
    ap.add_argument("--clear-policy", action="store_true")
    ap.add_argument("--show", action="store_true")
    a = ap.parse_args()

    fresh = not os.path.exists(a.image)
    if fresh:
        if not a.create:
            raise SystemExit("card.py: no card %s (--create SIZE makes one)" % a.image)
        size = parse_size(a.create)
        if size < SECTOR or size & (size - 1):
            raise SystemExit("card.py: %s is not a power of two: QEMU's SD card needs one" % a.create)
        os.makedirs(os.path.dirname(os.path.abspath(a.image)), exist_ok=True)
        with open(a.image, "wb") as f:
            f.truncate(size)
    size = os.path.getsize(a.image)
    with open(a.image, "r+b") as f:
        if fresh or a.reset:
            format_card(f, size)
            print("card: %s %s (%d KiB)" % (a.image, "created" if fresh else "reset", size // 1024))
        if a.clear_settings:
            write_at(f, LBA_SETTINGS, bytes(SECTOR))
        if a.settings is not None:
            lines = []
            for kv in a.settings.split():
                name, eq, value = kv.partition("=")
                if not eq or not re.fullmatch(r"[A-Za-z0-9_]+", name):
                    raise SystemExit("card.py: setting %r is not NAME=VALUE" % kv)
                lines.append("%s=%s" % (name, value))
            text = "\n".join(lines).encode()
            if len(text) > SECTOR - 13:
                raise SystemExit("card.py: the settings take %d bytes, at most %d fit" % (len(text), SECTOR - 13))
            write_at(f, LBA_SETTINGS, header(MAGIC_SETTINGS, text, text))
            print("card: settings %s" % (", ".join(l.split("=")[0] for l in lines) or "(none)"))
        if a.clear_policy:
            write_at(f, LBA_POLICY, bytes(SECTOR))
        if a.policy is not None:
            text = policy_text(a.policy)
            if len(text) > POLICY_SECTORS * SECTOR:
                raise SystemExit("card.py: policy %s is %d bytes, the card holds %d" % (a.policy, len(text), POLICY_SECTORS * SECTOR))
            name = os.path.basename(a.policy).encode()[:31]
            write_at(f, LBA_POLICY + 1, text)
            write_at(f, LBA_POLICY, header(MAGIC_POLICY, text, name.ljust(32, b"\0")))
            print("card: policy %s (%d bytes)" % (a.policy, len(text)))
        if a.show:
            show(f, size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
