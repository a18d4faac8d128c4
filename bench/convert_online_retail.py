"""Convert Online Retail II (UCI 502, CC BY 4.0) into import_platform_data CSVs: members, products, orders.

    .venv/bin/python bench/convert_online_retail.py --out /tmp/oretail_csv \
        [--path ../shared/data/online_retail_ii/transactions.csv.gz] [--before 2011-06-01]

How the invoice lines map onto the import contract (docs/IMPORT.md):

- member: `Customer ID` (lines without one are dropped: they cannot be used for customer-level work); joined_at is
  left empty, so the importer takes the member's first order.
- product: `StockCode` (trailing spaces trimmed), kind `course`, title = its most frequent description, price = its
  median unit price, published_at = its first sale. Codes that are not products (postage, manual lines, fees,
  discounts, samples, gift vouchers, bad debt, tests: see NON_PRODUCTS and the dataset README) are dropped.
- order: one order per invoice *line* (a product on an invoice), order_id `<Invoice>-<StockCode>`; duplicate lines of
  one product on one invoice are summed. quantity = units, amount = units x unit price, ordered_at = InvoiceDate (UK
  local time, no offset: read in the site's time zone, like the --as-of of the commands). A purchase is a line with a
  customer, an invoice not starting with C or A, quantity > 0 and price > 0 (the README's definition).
- refund: a cancellation line (`C` invoice) of a customer and product marks that customer's latest earlier,
  not yet refunded purchase line of the product `refunded`, with refunded_at = the cancellation's time, when it
  cancels at least that line's quantity (a partial return cannot be expressed: one order, one status; it is left
  paid). Cancellations with no earlier purchase in the file are dropped.

No events file: the retailer exported orders only, which is itself a condition the analytics must handle.
--before keeps only rows known before that instant (orders made before it; a refund made after it is left out, so
the order stays paid): the "import only what was known before T" half of a leakage check.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_PATH = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "online_retail_ii" / "transactions.csv.gz"
NON_PRODUCTS = {"POST", "DOT", "M", "m", "C2", "C3", "D", "S", "BANK CHARGES", "ADJUST", "ADJUST2", "AMAZONFEE",
                "CRUK", "TEST001", "TEST002", "GIFT", "B", "PADS"}


def load(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, dtype={"Invoice": str, "StockCode": str, "Customer ID": "Int64", "Description": str},
                     parse_dates=["InvoiceDate"])
    df = df[df["Customer ID"].notna()].copy()
    df["StockCode"] = df["StockCode"].str.strip()
    df = df[~df["StockCode"].isin(NON_PRODUCTS) & ~df["StockCode"].str.startswith("gift_0001")]
    df["Description"] = df["Description"].fillna("").str.strip()
    return df


def convert(df: pd.DataFrame, before: pd.Timestamp | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    first = df["Invoice"].str[0]
    buy = df[~first.isin(["C", "A"]) & (df["Quantity"] > 0) & (df["Price"] > 0)].copy()
    cancel = df[(first == "C") & (df["Quantity"] < 0)].copy()
    if before is not None:
        buy = buy[buy["InvoiceDate"] < before]
        cancel = cancel[cancel["InvoiceDate"] < before]
    buy["amount"] = buy["Quantity"] * buy["Price"]
    lines = (buy.groupby(["Invoice", "StockCode"], as_index=False)
             .agg(member_id=("Customer ID", "first"), ordered_at=("InvoiceDate", "min"),
                  quantity=("Quantity", "sum"), amount=("amount", "sum")))
    lines["order_id"] = lines["Invoice"] + "-" + lines["StockCode"]
    lines["status"] = "paid"
    lines["refunded_at"] = pd.NaT

    # Refunds: the latest earlier purchase line of the same customer and product (merge_asof, backward).
    cancel = (cancel.groupby(["Invoice", "StockCode"], as_index=False)
              .agg(member_id=("Customer ID", "first"), cancelled_at=("InvoiceDate", "min"), units=("Quantity", "sum")))
    cancel["units"] = -cancel["units"]
    left = cancel.sort_values("cancelled_at")
    right = lines[["order_id", "member_id", "StockCode", "ordered_at", "quantity"]].sort_values("ordered_at")
    matched = pd.merge_asof(left, right, left_on="cancelled_at", right_on="ordered_at", by=["member_id", "StockCode"],
                            direction="backward", allow_exact_matches=False)
    matched = matched[matched["order_id"].notna() & (matched["units"] >= matched["quantity"])]
    matched = matched.drop_duplicates("order_id", keep="first").set_index("order_id")["cancelled_at"]
    refunded = lines["order_id"].isin(matched.index)
    lines.loc[refunded, "status"] = "refunded"
    lines.loc[refunded, "refunded_at"] = lines.loc[refunded, "order_id"].map(matched)

    products = (buy.groupby("StockCode")
                .agg(title=("Description", lambda s: s[s != ""].mode().iat[0] if (s != "").any() else ""),
                     price=("Price", "median"), published_at=("InvoiceDate", "min"))
                .reset_index().rename(columns={"StockCode": "product_id"}))
    products["title"] = products["title"].where(products["title"] != "", products["product_id"]).str[:200]
    products["kind"] = "course"
    products["price"] = products["price"].round(2).map(lambda v: f"{v:.2f}")
    products["published_at"] = products["published_at"].dt.strftime("%Y-%m-%d %H:%M")

    members = pd.DataFrame({"member_id": sorted(lines["member_id"].unique())})

    orders = pd.DataFrame({
        "order_id": lines["order_id"], "member_id": lines["member_id"], "product_id": lines["StockCode"],
        "amount": np.round(lines["amount"].to_numpy(), 2), "currency": "EUR",  # GBP is not a platform currency
        "ordered_at": lines["ordered_at"].dt.strftime("%Y-%m-%d %H:%M"), "status": lines["status"],
        "quantity": lines["quantity"].astype(int),
        "refunded_at": lines["refunded_at"].dt.strftime("%Y-%m-%d %H:%M").fillna(""),
    }).sort_values(["ordered_at", "order_id"])
    orders["amount"] = orders["amount"].map(lambda v: f"{v:.2f}")
    return members, products[["product_id", "kind", "title", "price", "published_at"]], orders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--before", help="keep only rows known before this instant (YYYY-MM-DD[ HH:MM])")
    args = parser.parse_args()
    before = pd.Timestamp(args.before) if args.before else None
    members, products, orders = convert(load(args.path), before)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, frame in (("members", members), ("products", products), ("orders", orders)):
        frame.to_csv(args.out / f"{name}.csv", index=False, quoting=csv.QUOTE_MINIMAL)
    print(f"{len(members)} members, {len(products)} products, {len(orders)} orders "
          f"({int((orders['status'] == 'refunded').sum())} refunded) -> {args.out}")


if __name__ == "__main__":
    main()
