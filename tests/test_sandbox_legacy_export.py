"""The generated Logica Omsorg export (sandbox/legacy_export.py) checked against its contract,
reading the files back with plain Python: layout, header and trailer, and each fault where it says."""

from __future__ import annotations

import datetime as dt

import pytest

from sandbox.legacy_export import FILES, KINDS, SYSTEM_ID, WIDTHS, Export, clean_export, dirty_export
from schemas.identity import Personnummer

CRLF = b"\r\n"


def read_lines(path) -> tuple[list[str], bool]:
    """The file's lines (CP850, without their ends), and whether the last one ended in CR LF."""
    data = path.read_bytes()
    lines = data.split(CRLF)
    ended = lines[-1] == b""
    if ended:
        lines.pop()
    for line in lines:
        assert b"\r" not in line and b"\n" not in line, "a line end other than CR LF"
    return [line.decode("cp850") for line in lines], ended


def date(yymmdd: str) -> dt.date:
    """A date of a case, decision or note (all after 2000)."""
    return dt.date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6]))


def luhn_ok(ten: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(ten[:9])):
        product = int(char) * (1 if position % 2 else 2)
        total += product - 9 if product > 9 else product
    return str(-total % 10) == ten[9]


def key_of(name: str, line: str) -> str:
    return {
        "PERS.DAT": lambda: line[2:13],
        "ARENDE.DAT": lambda: line[2:12],
        "BESLUT.DAT": lambda: line[2:14],
        "JOURNAL.DAT": lambda: f"{line[2:14]}/{line[40:43]}",
    }[name]()


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Export:
    return dirty_export(tmp_path_factory.mktemp("dirty"))


@pytest.fixture(scope="module")
def files(export) -> dict[str, tuple[list[str], bool]]:
    return {name: read_lines(export.folder / name) for name in FILES}


@pytest.fixture(scope="module")
def faults_at(export) -> dict[tuple[str, int], str]:
    return {(fault.file, fault.line): fault.kind for fault in export.faults}


def data_lines(name: str, lines: list[str]) -> list[tuple[int, str]]:
    """(line number, line) of the data records: after the header, before the trailer or the end."""
    end = next((i for i, line in enumerate(lines) if i and line.startswith("99")), len(lines))
    return list(enumerate(lines[1:end], start=2))


def test_every_line_has_its_layout_width_and_ends_in_crlf(export, files):
    for name, (lines, ended) in files.items():
        header, *rest = lines
        assert header == f"00{export.export_date:%Y%m%d}{SYSTEM_ID}{name:<12}", name
        assert len(header) == 30
        for number, line in enumerate(rest, start=2):
            if line.startswith("99"):
                assert len(line) == 11, (name, number)
            elif (name, number) not in {
                (f.file, f.line) for f in export.faults if f.kind in ("cut_short", "trailing_garbage")
            }:
                assert len(line) == WIDTHS[name], (name, number, len(line))
        assert ended == (name != "JOURNAL.DAT"), name


def test_trailers_count_the_records_before_them(export, files):
    trailers = {}
    for name, (lines, _) in files.items():
        found = [(i, line) for i, line in enumerate(lines, start=1) if i > 1 and line.startswith("99")]
        if name == "JOURNAL.DAT":
            assert found == []  # cut short: no trailer
            assert len(lines) - 1 == export.counts[name]
            continue
        [(number, line)] = found
        trailers[name] = int(line[2:])
        assert number - 2 + (1 if name == "BESLUT.DAT" else 0) == export.counts[name]  # + the garbage after
        assert len(lines) == number + (1 if name == "BESLUT.DAT" else 0)
    assert trailers["PERS.DAT"] == export.counts["PERS.DAT"]
    assert trailers["ARENDE.DAT"] == export.counts["ARENDE.DAT"] + 1  # the mismatch
    assert trailers["BESLUT.DAT"] == export.counts["BESLUT.DAT"] - 1  # the garbage line is after the trailer


def test_every_kind_of_fault_once_each_on_its_own_line(export):
    kinds = [fault.kind for fault in export.faults]
    assert set(kinds) == set(KINDS)
    assert sorted(kinds) == sorted([*KINDS, "unknown_case"])  # a decision and a note
    assert {f.file for f in export.faults if f.kind == "unknown_case"} == {"BESLUT.DAT", "JOURNAL.DAT"}
    assert len({(f.file, f.line) for f in export.faults}) == len(export.faults)


def test_each_fault_line_holds_what_its_kind_says(export, files, faults_at):
    persons = {line[2:13] for _, line in data_lines("PERS.DAT", files["PERS.DAT"][0])}
    cases = {line[2:12] for _, line in data_lines("ARENDE.DAT", files["ARENDE.DAT"][0])}
    for fault in export.faults:
        lines, _ = files[fault.file]
        line = lines[fault.line - 1]
        earlier = [(n, other) for n, other in data_lines(fault.file, lines) if n < fault.line]
        if fault.key is not None:
            assert key_of(fault.file, line) == fault.key, fault
        match fault.kind:
            case "invalid_check_digit":
                assert line[8] == "-" and date(line[2:8]) and not luhn_ok(line[2:8] + line[9:13])
            case "impossible_date":
                assert line[4:6] == "13" and luhn_ok(line[2:8] + line[9:13])
            case "zero_personnummer":
                assert line[2:13] == "000000-0000"
            case "identical_duplicate":
                [(first, _)] = [(n, other) for n, other in earlier if other == line]
                assert (fault.file, first) not in faults_at
            case "conflict":
                [(first, other)] = [(n, other) for n, other in earlier if other[2:14] == line[2:14]]
                assert other != line and (fault.file, first) not in faults_at
            case "unknown_person":
                assert line[12:23] not in persons
            case "unknown_case":
                assert line[14:24] not in cases
            case "zero_date":
                assert line[23:29] == "000000"
            case "closed_before_opened":
                assert date(line[29:35]) < date(line[23:29])
            case "lower_case_code":
                assert line[35:38] == "lss"
            case "valid_to_before_valid_from":
                assert date(line[44:50]) < date(line[38:44])
            case "hours_not_a_number":
                assert not line[50:55].isdigit()
            case "unknown_status":
                assert line[55] not in "BAD"
            case "invalid_text":
                raw = (export.folder / fault.file).read_bytes().split(CRLF)[fault.line - 1]
                assert b"\x00\x07" in raw[13:43]
            case "continuation_gap":
                note = line[2:14]
                assert line[40:43] == "003" and lines[fault.line - 2][2:14] == note
                assert lines[fault.line - 2][40:43] == "001"
                assert not any(other[2:14] == note and other[40:43] == "002" for other in lines)
            case "continuation_out_of_order":
                following = lines[fault.line]
                assert line[40:43] == "002" and following[2:14] == line[2:14] and following[40:43] == "001"
            case "cut_short":
                assert fault.line == len(lines) and line.startswith("04") and len(line) < WIDTHS["JOURNAL.DAT"]
                assert not (export.folder / fault.file).read_bytes().endswith(CRLF)
            case "trailer_mismatch":
                assert line.startswith("99") and int(line[2:]) == fault.line - 1  # records + 1
            case "trailing_garbage":
                assert lines[fault.line - 2].startswith("99") and fault.line == len(lines)
                assert not line.startswith("03") and len(line) != WIDTHS["BESLUT.DAT"]
            case _:
                pytest.fail(f"unchecked kind {fault.kind}")


def test_every_other_record_is_valid(export, files, faults_at):
    """The faults are unambiguous: no record but the fault records is wrong, nothing depends on one."""
    day = export.export_date

    def good(name):
        return [line for n, line in data_lines(name, files[name][0]) if (name, n) not in faults_at]

    persons = {}
    for line in good("PERS.DAT"):
        number = Personnummer.parse(line[2:13], reference=day)
        assert line[2:13] not in persons
        persons[line[2:13]] = number.digits
        assert line[13:43].strip() and line[133] in " S"
        if line[134:140].strip():
            assert number.birth_date < date(line[134:140]) <= day
    assert list(persons.values()) == export.persons

    cases = {}
    for line in good("ARENDE.DAT"):
        assert line[12:23] in persons and line[2:12] not in cases
        opened = date(line[23:29])
        assert line[29:35] == "      " or opened < date(line[29:35]) <= day
        assert line[35:38] in ("ÄO ", "LSS", "IFO", "SOP")
        cases[line[2:12]] = line
    decisions = set()
    for line in good("BESLUT.DAT"):
        assert line[14:24] in cases and line[2:14] not in decisions
        decisions.add(line[2:14])
        assert date(line[32:38]) <= date(line[38:44])
        assert line[44:50] == "      " or date(line[38:44]) < date(line[44:50])
        assert line[50:55].isdigit() and line[55] in "BAD"
    notes: dict[str, list[str]] = {}
    for line in good("JOURNAL.DAT"):
        assert line[14:24] in cases
        notes.setdefault(line[2:14], []).append(line[40:43])
    faulty_notes = {f.key.split("/")[0] for f in export.faults if f.file == "JOURNAL.DAT"}
    for note, continuations in notes.items():
        if note not in faulty_notes:
            assert continuations == [f"{n:03d}" for n in range(1, len(continuations) + 1)], note


def test_centenarian_coordination_and_protected_are_written_as_said(export, files):
    persons = [line for _, line in data_lines("PERS.DAT", files["PERS.DAT"][0])]
    [plus] = {line[2:13] for line in persons if line[8] == "+"}
    assert Personnummer.parse(plus, reference=export.export_date).digits == export.centenarian
    assert (export.export_date - Personnummer(export.centenarian).birth_date).days > 100 * 365
    written = f"{export.coordination[2:8]}-{export.coordination[8:]}"
    assert written in {line[2:13] for line in persons}
    assert Personnummer.parse(written, reference=export.export_date).is_coordination
    protected = [line for line in persons if line[133] == "S"]
    assert sorted(
        {Personnummer.parse(line[2:13], reference=export.export_date).digits for line in protected}
    ) == sorted(export.protected)
    assert len(export.protected) >= 2 and all(line[73:108].strip() for line in protected)


def test_same_seed_same_bytes(tmp_path, export):
    again = dirty_export(tmp_path)
    assert again.faults == export.faults
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (export.folder / name).read_bytes()


def test_clean_export_writes_the_counts_it_returns(tmp_path):
    counts = clean_export(tmp_path, 200_000, seed=3)
    assert 200_000 <= sum(counts.values()) < 200_050
    for name in FILES:
        lines, ended = read_lines(tmp_path / name)
        assert ended
        assert lines[0] == f"0020261130{SYSTEM_ID}{name:<12}" and lines[-1] == f"99{counts[name]:09d}"
        assert len(lines) == counts[name] + 2
        assert all(len(line) == WIDTHS[name] for line in lines[1:-1]), name
    share = counts["PERS.DAT"] / sum(counts.values())
    assert 0.07 < share < 0.13
