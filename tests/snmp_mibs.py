"""Stand-ins for the IETF MIB modules that mibs/HAVEN-MIB.txt imports, so that snmptrapd and
snmptranslate in the tests decode our traps by name on every machine: Debian ships none of the
IETF modules (they are in the non-free snmp-mibs-downloader). They define just what HAVEN-MIB
imports, and sysUpTime / snmpTrapOID for snmptrapd's output."""

from __future__ import annotations

import os
import pathlib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB_DIR = os.path.join(REPO, "mibs")

BASE_MODULES = {
    "SNMPv2-SMI": """SNMPv2-SMI DEFINITIONS ::= BEGIN
org          OBJECT IDENTIFIER ::= { iso 3 }
dod          OBJECT IDENTIFIER ::= { org 6 }
internet     OBJECT IDENTIFIER ::= { dod 1 }
mgmt         OBJECT IDENTIFIER ::= { internet 2 }
mib-2        OBJECT IDENTIFIER ::= { mgmt 1 }
private      OBJECT IDENTIFIER ::= { internet 4 }
enterprises  OBJECT IDENTIFIER ::= { private 1 }
snmpV2       OBJECT IDENTIFIER ::= { internet 6 }
snmpModules  OBJECT IDENTIFIER ::= { snmpV2 3 }
MODULE-IDENTITY MACRO ::= BEGIN END
OBJECT-IDENTITY MACRO ::= BEGIN END
OBJECT-TYPE MACRO ::= BEGIN END
NOTIFICATION-TYPE MACRO ::= BEGIN END
Integer32 ::= INTEGER (-2147483648..2147483647)
Unsigned32 ::= [APPLICATION 2] IMPLICIT INTEGER (0..4294967295)
TimeTicks ::= [APPLICATION 3] IMPLICIT INTEGER (0..4294967295)
END
""",
    "SNMPv2-TC": """SNMPv2-TC DEFINITIONS ::= BEGIN
TEXTUAL-CONVENTION MACRO ::= BEGIN END
DisplayString ::= TEXTUAL-CONVENTION
    DISPLAY-HINT "255a"
    STATUS       current
    DESCRIPTION  "Text in NVT ASCII."
    SYNTAX       OCTET STRING (SIZE (0..255))
DateAndTime ::= TEXTUAL-CONVENTION
    DISPLAY-HINT "2d-1d-1d,1d:1d:1d.1d,1a1d:1d"
    STATUS       current
    DESCRIPTION  "A date and time."
    SYNTAX       OCTET STRING (SIZE (8 | 11))
END
""",
    "SNMPv2-CONF": """SNMPv2-CONF DEFINITIONS ::= BEGIN
OBJECT-GROUP MACRO ::= BEGIN END
NOTIFICATION-GROUP MACRO ::= BEGIN END
MODULE-COMPLIANCE MACRO ::= BEGIN END
END
""",
    "SNMPv2-MIB": """SNMPv2-MIB DEFINITIONS ::= BEGIN
IMPORTS MODULE-IDENTITY, OBJECT-TYPE, TimeTicks, mib-2, snmpModules FROM SNMPv2-SMI;
snmpMIB MODULE-IDENTITY
    LAST-UPDATED "200210160000Z"
    ORGANIZATION "stand-in"
    CONTACT-INFO "none"
    DESCRIPTION  "sysUpTime and snmpTrapOID only."
    ::= { snmpModules 1 }
system OBJECT IDENTIFIER ::= { mib-2 1 }
sysUpTime OBJECT-TYPE
    SYNTAX      TimeTicks
    MAX-ACCESS  read-only
    STATUS      current
    DESCRIPTION "Time since the management part of the system was last re-initialized."
    ::= { system 3 }
snmpMIBObjects OBJECT IDENTIFIER ::= { snmpMIB 1 }
snmpTrap       OBJECT IDENTIFIER ::= { snmpMIBObjects 4 }
snmpTrapOID OBJECT-TYPE
    SYNTAX      OBJECT IDENTIFIER
    MAX-ACCESS  accessible-for-notify
    STATUS      current
    DESCRIPTION "The notification being sent."
    ::= { snmpTrap 1 }
END
""",
}


def base_modules(tmp_path) -> str:
    d = pathlib.Path(tmp_path) / "base-mibs"
    d.mkdir(exist_ok=True)
    for name, text in BASE_MODULES.items():
        (d / name).write_text(text)
    return str(d)


def mib_path(tmp_path) -> str:
    """The `-M` value: the stand-ins, then our MIB (load with `-m HAVEN-MIB:SNMPv2-MIB`)."""
    return f"{base_modules(tmp_path)}:{MIB_DIR}"
