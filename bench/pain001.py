#!/usr/bin/python3
"""Writes an ISO 20022 pain.001.001.09 of N credit transfers to stdout:
from the demo debtor account 6222020000000001 to the sandbox's payees,
0.01 to 9.99 CNY each.  For bench/batch and the tests of docs/erp.md.

    bench/pain001.py 10000 MSGID > batch.xml
"""
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
msg = sys.argv[2] if len(sys.argv) > 2 else "BENCH-%d" % n
payees = [("6222020000000201", "Shanghai Supplier Co., Ltd."),
          ("6222020000000202", "上海供应商有限公司"),
          ("6222020000000203", "Beijing Logistics Ltd.")]

items = []
total = 0
for i in range(n):
    cents = 1 + (i * 37) % 999
    total += cents
    acct, name = payees[i % len(payees)]
    items.append(
        "<CdtTrfTxInf><PmtId><InstrId>I%d</InstrId>"
        "<EndToEndId>E2E-%s-%06d</EndToEndId></PmtId>"
        "<Amt><InstdAmt Ccy=\"CNY\">%d.%02d</InstdAmt></Amt>"
        "<CdtrAgt><FinInstnId><BICFI>OBKCNSH</BICFI></FinInstnId></CdtrAgt>"
        "<Cdtr><Nm>%s</Nm></Cdtr>"
        "<CdtrAcct><Id><Othr><Id>%s</Id></Othr></Id></CdtrAcct>"
        "<RmtInf><Ustrd>Invoice %d of batch %s, payment for goods "
        "delivered under contract 2026-%06d</Ustrd></RmtInf>"
        "</CdtTrfTxInf>\n"
        % (i, msg, i, cents // 100, cents % 100, name, acct, i, msg, i))

sys.stdout.write(
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09">\n'
    "<CstmrCdtTrfInitn><GrpHdr><MsgId>%s</MsgId>"
    "<CreDtTm>2026-12-03T09:00:00+08:00</CreDtTm>"
    "<NbOfTxs>%d</NbOfTxs><CtrlSum>%d.%02d</CtrlSum>"
    "<InitgPty><Nm>Demo Trading Co., Ltd.</Nm></InitgPty></GrpHdr>\n"
    "<PmtInf><PmtInfId>%s-1</PmtInfId><PmtMtd>TRF</PmtMtd>"
    "<NbOfTxs>%d</NbOfTxs><ReqdExctnDt><Dt>2026-12-03</Dt></ReqdExctnDt>"
    "<Dbtr><Nm>Demo Trading Co., Ltd.</Nm></Dbtr>"
    "<DbtrAcct><Id><Othr><Id>6222020000000001</Id></Othr></Id></DbtrAcct>"
    "<DbtrAgt><FinInstnId><BICFI>OBKCNSH</BICFI></FinInstnId></DbtrAgt>"
    "<ChrgBr>SLEV</ChrgBr>\n%s</PmtInf></CstmrCdtTrfInitn></Document>\n"
    % (msg, n, total // 100, total % 100, msg, n, "".join(items)))
