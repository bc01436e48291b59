//! What an ELF file asks of the dynamic loader (`PT_INTERP`, `DT_NEEDED`), read from its
//! headers with every offset checked.

use anyhow::{bail, Context, Result};

/// What an ELF file asks of the dynamic loader.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElfInfo {
    /// `PT_INTERP`: the program interpreter (dynamic loader) path.
    pub interp: Option<String>,
    /// `DT_NEEDED`: the shared libraries, by soname, in order.
    pub needed: Vec<String>,
}

// Offsets come from the file, so every sum is checked: a hostile header gives "truncated",
// never a wrapped index.
fn bytes_at<const N: usize>(d: &[u8], off: usize) -> Option<[u8; N]> {
    d.get(off..off.checked_add(N)?)?.try_into().ok()
}
fn u16_at(d: &[u8], off: usize) -> Option<u16> {
    bytes_at(d, off).map(u16::from_le_bytes)
}
fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    bytes_at(d, off).map(u32::from_le_bytes)
}
fn u64_at(d: &[u8], off: usize) -> Option<u64> {
    bytes_at(d, off).map(u64::from_le_bytes)
}
/// A file offset or size read from the file, as an index into it.
fn index(v: u64) -> Option<usize> {
    usize::try_from(v).ok()
}
fn cstr_at(d: &[u8], off: usize) -> Option<String> {
    let rest = d.get(off..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;

/// Read `PT_INTERP` and `DT_NEEDED` from a 64-bit little-endian ELF image (x86-64,
/// aarch64): program headers, then the dynamic section, whose string table is found by
/// mapping its virtual address back to a file offset through the `PT_LOAD` segments.
pub fn parse_elf(d: &[u8]) -> Result<ElfInfo> {
    if d.get(0..4) != Some(b"\x7fELF") {
        bail!("not an ELF file");
    }
    if d.get(4) != Some(&2) || d.get(5) != Some(&1) {
        bail!("only 64-bit little-endian ELF files are supported");
    }
    let bad = || anyhow::anyhow!("truncated ELF header");
    let phoff = index(u64_at(d, 0x20).ok_or_else(bad)?).ok_or_else(bad)?;
    let phentsize = u16_at(d, 0x36).ok_or_else(bad)? as usize;
    let phnum = u16_at(d, 0x38).ok_or_else(bad)? as usize;
    struct Ph {
        kind: u32,
        offset: u64,
        vaddr: u64,
        filesz: u64,
    }
    let mut phs = Vec::new();
    for i in 0..phnum {
        let at = i
            .checked_mul(phentsize)
            .and_then(|o| o.checked_add(phoff))
            .ok_or_else(bad)?;
        phs.push(Ph {
            kind: u32_at(d, at).ok_or_else(bad)?,
            offset: u64_at(d, at.checked_add(8).ok_or_else(bad)?).ok_or_else(bad)?,
            vaddr: u64_at(d, at.checked_add(16).ok_or_else(bad)?).ok_or_else(bad)?,
            filesz: u64_at(d, at.checked_add(32).ok_or_else(bad)?).ok_or_else(bad)?,
        });
    }
    let mut info = ElfInfo::default();
    if let Some(p) = phs.iter().find(|p| p.kind == PT_INTERP) {
        info.interp = Some(cstr_at(d, index(p.offset).ok_or_else(bad)?).ok_or_else(bad)?);
    }
    let Some(dynamic) = phs.iter().find(|p| p.kind == PT_DYNAMIC) else {
        return Ok(info);
    };
    let mut needed_offsets = Vec::new();
    let mut strtab_vaddr = None;
    let mut at = index(dynamic.offset).ok_or_else(bad)?;
    // Never past the file, whatever the header claims.
    let end = index(dynamic.filesz)
        .and_then(|size| at.checked_add(size))
        .ok_or_else(bad)?
        .min(d.len());
    while at.checked_add(16).is_some_and(|next| next <= end) {
        let tag = u64_at(d, at).ok_or_else(bad)?;
        let val = u64_at(d, at + 8).ok_or_else(bad)?;
        match tag {
            DT_NULL => break,
            DT_NEEDED => needed_offsets.push(val),
            DT_STRTAB => strtab_vaddr = Some(val),
            _ => {}
        }
        at += 16;
    }
    if needed_offsets.is_empty() {
        return Ok(info);
    }
    let strtab_vaddr = strtab_vaddr.context("dynamic section has DT_NEEDED but no DT_STRTAB")?;
    let seg = phs
        .iter()
        .find(|p| p.kind == PT_LOAD && p.vaddr <= strtab_vaddr && strtab_vaddr - p.vaddr < p.filesz)
        .context("DT_STRTAB lies in no loaded segment")?;
    let strtab = (strtab_vaddr - seg.vaddr)
        .checked_add(seg.offset)
        .ok_or_else(bad)?;
    for off in needed_offsets {
        let at = strtab.checked_add(off).and_then(index).ok_or_else(bad)?;
        info.needed.push(cstr_at(d, at).ok_or_else(bad)?);
    }
    Ok(info)
}
