"""ISO 4217 currency codes the engine accepts (the active list, plus a few codes withdrawn
recently that old records may still carry). A `currency:` key, a `base_currency`, a currency
field's options and values, and every exchange rate are checked against it."""

from __future__ import annotations

import re

ISO_4217 = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN
BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP
ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR
ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD
MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR
PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL
THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF
XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG ZWL
""".split())

# names people write instead of the code, for the "did you mean" of a mistake
COMMON_NAMES = {"RMB": "CNY", "YUAN": "CNY", "RENMINBI": "CNY", "YEN": "JPY", "EURO": "EUR",
                "DOLLAR": "USD", "US$": "USD", "NTD": "TWD", "UKP": "GBP", "STG": "GBP"}
CODE_SHAPE = re.compile(r"^[A-Z]{3}$")


def is_currency(value) -> bool:
    """Whether `value` is an ISO 4217 code the engine knows (upper case, as stored)."""
    return isinstance(value, str) and value in ISO_4217


def currency_hint(value: str) -> str:
    """A hint for a code that is not one: the code meant, where it is plain."""
    text = str(value).strip().upper()
    if text in ISO_4217 and text != value:
        return f" (did you mean '{text}'?)"
    if text in COMMON_NAMES:
        return f" (did you mean '{COMMON_NAMES[text]}'?)"
    return ""
