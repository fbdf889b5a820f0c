#!/usr/bin/python3
"""Reads an ISO 20022 pain.002.001.10 on stdin and prints what it says as
JSON, for the tests: parsed with Python's xml.etree, apart from the bank's
own Lua.

    {"ns": ..., "orgnl_msg_id": ..., "orgnl_nb": ..., "orgnl_ctrl_sum": ...,
     "grp_sts": ..., "per_sts": {"ACSC": [n, sum], ...},
     "txs": [[end_to_end_id, tx_sts, reason code or null, ref], ...]}
"""
import json
import sys
import xml.etree.ElementTree as ET

NS = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"
q = {"p": NS}

root = ET.fromstring(sys.stdin.buffer.read())
assert root.tag == "{%s}Document" % NS, root.tag
rpt = root.find("p:CstmrPmtStsRpt", q)
grp = rpt.find("p:OrgnlGrpInfAndSts", q)
out = {
    "ns": NS,
    "msg_id": rpt.findtext("p:GrpHdr/p:MsgId", namespaces=q),
    "orgnl_msg_id": grp.findtext("p:OrgnlMsgId", namespaces=q),
    "orgnl_msg_nm_id": grp.findtext("p:OrgnlMsgNmId", namespaces=q),
    "orgnl_nb": grp.findtext("p:OrgnlNbOfTxs", namespaces=q),
    "orgnl_ctrl_sum": grp.findtext("p:OrgnlCtrlSum", namespaces=q),
    "grp_sts": grp.findtext("p:GrpSts", namespaces=q),
    "per_sts": {},
    "txs": [],
}
for s in grp.findall("p:NbOfTxsPerSts", q):
    out["per_sts"][s.findtext("p:DtldSts", namespaces=q)] = [
        s.findtext("p:DtldNbOfTxs", namespaces=q),
        s.findtext("p:DtldCtrlSum", namespaces=q)]
for tx in rpt.findall("p:OrgnlPmtInfAndSts/p:TxInfAndSts", q):
    out["txs"].append([
        tx.findtext("p:OrgnlEndToEndId", namespaces=q),
        tx.findtext("p:TxSts", namespaces=q),
        tx.findtext("p:StsRsnInf/p:Rsn/p:Cd", namespaces=q),
        tx.findtext("p:AcctSvcrRef", namespaces=q)])
json.dump(out, sys.stdout)
