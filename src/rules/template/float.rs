//! Go's float64 text: `strconv.FormatFloat` for the verbs `e E f F g G x X` with and without a
//! precision (shortest digits that round-trip, `%g`'s exponent rule, two-digit exponents,
//! hexadecimal mantissas), and the `%v`/`%.4g` forms templates print (`1e+06`, `+Inf`, `NaN`).

/// Decimal digits of a finite non-negative float (no leading zeros) and the decimal point
/// position: `value = 0.DIGITS * 10^dp`.
fn decimal(abs: f64, significant: Option<usize>) -> (Vec<u8>, i32) {
    let s = match significant {
        Some(n) => format!("{:.*e}", n.saturating_sub(1), abs),
        None => format!("{abs:e}"),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    (digits, exp + 1)
}

fn fmt_e(out: &mut String, d: &[u8], dp: i32, prec: usize, ech: char) {
    out.push(char::from(d.first().copied().unwrap_or(b'0')));
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(char::from(d.get(i).copied().unwrap_or(b'0')));
        }
    }
    out.push(ech);
    let exp = if d.iter().all(|&c| c == b'0') {
        0
    } else {
        dp - 1
    };
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    out.push_str(&a.to_string());
}

fn fmt_f(out: &mut String, d: &[u8], dp: i32, prec: usize) {
    if dp > 0 {
        for i in 0..dp as usize {
            out.push(char::from(d.get(i).copied().unwrap_or(b'0')));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as i32 {
            let j = dp + i - 1;
            let c = if j < 0 {
                b'0'
            } else {
                d.get(j as usize).copied().unwrap_or(b'0')
            };
            out.push(char::from(c));
        }
    }
}

fn fmt_hex(out: &mut String, abs: f64, upper: bool, prec: Option<usize>) {
    let bits = abs.to_bits();
    let mut exp = ((bits >> 52) & 0x7ff) as i32;
    let mut mant = bits & ((1u64 << 52) - 1);
    if exp == 0 && mant == 0 {
        out.push_str(if upper { "0X0P+00" } else { "0x0p+00" });
        return;
    }
    if exp == 0 {
        exp = -1022;
        while mant & (1u64 << 52) == 0 {
            mant <<= 1;
            exp -= 1;
        }
        mant &= (1u64 << 52) - 1;
    } else {
        exp -= 1023;
    }
    let mut lead = 1u64;
    let mut frac = match prec {
        Some(p) if p < 13 => {
            // Round the 52 fraction bits to p hex digits, half to even, as strconv does.
            let shift = 4 * (13 - p as u32);
            let full = (1u64 << 52) | mant;
            let keep = full >> shift;
            let rest = full & ((1u64 << shift) - 1);
            let half = 1u64 << (shift - 1);
            let mut r = keep;
            if rest > half || (rest == half && keep & 1 == 1) {
                r += 1;
            }
            if r >> (52 - shift) >= 2 {
                r >>= 1;
                exp += 1;
            }
            lead = r >> (52 - shift);
            let frac_bits = r & ((1u64 << (52 - shift)) - 1);
            if p == 0 {
                String::new()
            } else {
                format!("{frac_bits:0width$x}", width = p)
            }
        }
        Some(p) => format!("{mant:013x}{}", "0".repeat(p - 13)),
        None => {
            let mut f = format!("{mant:013x}");
            while f.ends_with('0') {
                f.pop();
            }
            f
        }
    };
    if prec.is_none() {
        while frac.ends_with('0') {
            frac.pop();
        }
    }
    let mut s = format!("0x{lead}");
    if !frac.is_empty() {
        s.push('.');
        s.push_str(&frac);
    }
    s.push('p');
    s.push(if exp < 0 { '-' } else { '+' });
    s.push_str(&format!("{:02}", exp.unsigned_abs()));
    out.push_str(&if upper { s.to_uppercase() } else { s });
}

/// Go's `strconv.FormatFloat(v, verb, prec, 64)` with a leading sign always present
/// (`+`/`-`), which `fmt` then keeps or drops.
pub(crate) fn format_float_signed(v: f64, verb: char, prec: Option<usize>) -> String {
    if v.is_nan() {
        return "+NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let mut out = String::from(if v.is_sign_negative() { "-" } else { "+" });
    let abs = v.abs();
    match verb {
        'e' | 'E' => {
            let (d, dp) = decimal(abs, prec.map(|p| p + 1));
            let p = prec.unwrap_or(d.len().saturating_sub(1));
            fmt_e(&mut out, &d, dp, p, verb);
        }
        'f' | 'F' => match prec {
            Some(p) => out.push_str(&format!("{abs:.p$}")),
            None => out.push_str(&format!("{abs}")),
        },
        'x' | 'X' => fmt_hex(&mut out, abs, verb == 'X', prec),
        _ => {
            let ech = if verb == 'G' { 'E' } else { 'e' };
            let shortest = prec.is_none();
            let p = prec.map(|p| p.max(1));
            let (d, dp) = decimal(abs, p);
            let nd = d.len() as i32;
            let mut eprec = p.map_or(nd, |p| p as i32);
            if eprec > nd && nd >= dp {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exp = dp - 1;
            let pr = p.map_or(nd, |p| p as i32);
            if exp < -4 || exp >= eprec {
                let pr = pr.min(nd);
                fmt_e(&mut out, &d, dp, (pr - 1).max(0) as usize, ech);
            } else {
                let pr = if pr > dp { nd } else { pr };
                fmt_f(&mut out, &d, dp, (pr - dp).max(0) as usize);
            }
        }
    }
    out
}

/// Go's `fmt.Sprintf("%.Ng", v)` (Prometheus's humanize functions use `%.4g`).
pub(crate) fn format_g(v: f64, prec: usize) -> String {
    let s = format_float_signed(v, 'g', Some(prec));
    finish_sign(s)
}

/// Go's `%v` of a float64: `1e+06`, `0.1`, `+Inf`, `NaN`.
pub(crate) fn format_float_v(v: f64) -> String {
    finish_sign(format_float_signed(v, 'g', None))
}

fn finish_sign(s: String) -> String {
    if s == "+NaN" {
        return "NaN".into();
    }
    if s == "+Inf" {
        return s;
    }
    match s.strip_prefix('+') {
        Some(r) => r.to_string(),
        None => s,
    }
}
