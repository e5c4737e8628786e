"""Xero's enumerations, as the Accounting API's OpenAPI spec lists them (the truth for shapes).

A value outside these sets is either a change on Xero's side or a broken record; the suites
decide per column whether that stops the batch (the value changes what money means) or is
recorded and loaded (the value only describes).
"""

from __future__ import annotations

# Invoice.Status. ARCHIVED is not in the spec, but includeArchived=true (which the invoices
# stream sends) makes Xero return it; xero-python's strict enum breaks on exactly that value.
INVOICE_STATUS = ("DRAFT", "SUBMITTED", "DELETED", "AUTHORISED", "PAID", "VOIDED", "ARCHIVED")
INVOICE_TYPE = ("ACCPAY", "ACCPAYCREDIT", "APOVERPAYMENT", "APPREPAYMENT", "ACCREC", "ACCRECCREDIT",
                "AROVERPAYMENT", "ARPREPAYMENT")
LINE_AMOUNT_TYPES = ("Exclusive", "Inclusive", "NoTax")

PAYMENT_STATUS = ("AUTHORISED", "DELETED")
PAYMENT_TYPE = ("ACCRECPAYMENT", "ACCPAYPAYMENT", "ARCREDITPAYMENT", "APCREDITPAYMENT", "AROVERPAYMENTPAYMENT",
                "ARPREPAYMENTPAYMENT", "APPREPAYMENTPAYMENT", "APOVERPAYMENTPAYMENT")

CREDIT_NOTE_STATUS = ("DRAFT", "SUBMITTED", "DELETED", "AUTHORISED", "PAID", "VOIDED")
CREDIT_NOTE_TYPE = ("ACCPAYCREDIT", "ACCRECCREDIT")

CONTACT_STATUS = ("ACTIVE", "ARCHIVED", "GDPRREQUEST")

ACCOUNT_STATUS = ("ACTIVE", "ARCHIVED", "DELETED")
ACCOUNT_TYPE = ("BANK", "CURRENT", "CURRLIAB", "DEPRECIATN", "DIRECTCOSTS", "EQUITY", "EXPENSE", "FIXED",
                "INVENTORY", "LIABILITY", "NONCURRENT", "OTHERINCOME", "OVERHEADS", "PREPAYMENT", "REVENUE",
                "SALES", "TERMLIAB", "PAYG")
ACCOUNT_CLASS = ("ASSET", "EQUITY", "EXPENSE", "LIABILITY", "REVENUE")

TRACKING_STATUS = ("ACTIVE", "ARCHIVED", "DELETED")

JOURNAL_SOURCE_TYPE = ("ACCREC", "ACCPAY", "ACCRECCREDIT", "ACCPAYCREDIT", "ACCRECPAYMENT", "ACCPAYPAYMENT",
                       "ARCREDITPAYMENT", "APCREDITPAYMENT", "CASHREC", "CASHPAID", "TRANSFER", "ARPREPAYMENT",
                       "APPREPAYMENT", "AROVERPAYMENT", "APOVERPAYMENT", "EXPCLAIM", "EXPPAYMENT", "MANJOURNAL",
                       "PAYSLIP", "WAGEPAYABLE", "INTEGRATEDPAYROLLPE", "INTEGRATEDPAYROLLPT", "EXTERNALSPENDMONEY",
                       "INTEGRATEDPAYROLLPTPAYMENT", "INTEGRATEDPAYROLLCN")

# Invoices that are posted to the ledger (a draft or submitted invoice is not, yet).
POSTED_INVOICE_STATUS = ("AUTHORISED", "PAID")
