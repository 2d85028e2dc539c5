"""A 1 MiB raw disk whose boot sector prints a line on the first serial port and halts: the api's
fallback ``tiny`` image when the Linux guest is not built, and the compute's probe of whether KVM
really runs a guest. Small, but really bootable (BIOS boot)."""

from __future__ import annotations

MESSAGE = b"Stratus tiny image: booted\r\n"
SECTOR = 512
SIZE = 1024 * 1024


def boot_sector() -> bytes:
    # 16-bit real mode, loaded at 0x7c00:
    #   cli; xor ax,ax; mov ds,ax; mov si,msg; mov dx,0x3f8
    # .next: lodsb; test al,al; jz .halt; out dx,al; jmp .next
    # .halt: hlt; jmp .halt
    code = bytes(
        [0xFA, 0x31, 0xC0, 0x8E, 0xD8, 0xBE, 0x00, 0x00, 0xBA, 0xF8, 0x03,
         0xAC, 0x84, 0xC0, 0x74, 0x03, 0xEE, 0xEB, 0xF8,
         0xF4, 0xEB, 0xFD]
    )  # fmt: skip
    msg_addr = 0x7C00 + len(code)
    code = code[:6] + msg_addr.to_bytes(2, "little") + code[8:]
    body = code + MESSAGE + b"\x00"
    return body + b"\x00" * (SECTOR - 2 - len(body)) + b"\x55\xaa"


def tiny_image() -> bytes:
    return boot_sector() + b"\x00" * (SIZE - SECTOR)
