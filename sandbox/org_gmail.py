"""The reps' and managers' Gmail mailboxes: `SyntheticOrg.mailboxes/gmail_messages/gmail_changes`.

A mail is one real-world email; each internal participant's mailbox holds its own copy (own
id, own threadId, SENT or INBOX labels), so a mail to two reps shows up in both. Mail comes
in units generated from their own RNGs, so any unit can be regenerated alone:

* per deal: a thread for every email activity the CRM logged (Salesforce Task 'Email' /
  HubSpot email), whose first message is the logged one, plus unlogged replies and
  meeting-scheduling threads, so only ~60 % of a deal's mail is logged;
* per week: internal mail (pipeline reviews, rep-manager and rep-rep threads, forecast
  roll-ups), newsletters and personal mail. Its rates scale with the reps' deal load, so
  a mailbox holds ~2.5 messages per logged CRM email at every size.

History ids are a strictly increasing function of time (one per millisecond), so they rise
with time in every mailbox. Some copies are deleted later (within 40 days): newsletters
often, deal mail rarely. `truth` names the deal a message belongs to, and flags the deal
mail a contact sent from a personal address (`personal_address`).
"""

from __future__ import annotations

from array import array
from email.utils import format_datetime
from typing import Iterator

from sandbox.org_base import (
    _BDAY, _BWEEK, _DAY, _FIRST, _HOLIDAYS, _HOUR, _LAST, _MIN, _Deal, _User, _bdate, _biz, _digest, _dt,
    _lognorm_bdays, _personal_email, _poisson, _user_name, _wall)
from sandbox.org_hubspot import deal_id

_HIST_T0 = 1_600_000_000_000        # history id = ms since this moment (2020-09-13)
_MAX_DELETE_DAYS = 40               # a copy is deleted, if ever, within this many days
_P_DELETE = {"deal": 0.02, "internal": 0.04, "personal": 0.10, "newsletter": 0.30}
_P_INCOMING, _P_PERSONAL_ADDRESS = 0.35, 0.06
_P_CC_MANAGER, _P_CC_CONTACT, _P_SCHEDULING = 0.10, 0.12, 0.30
_FRIENDS = 4                        # private correspondents per user

_OPENERS = ["Following up on", "A quick note about", "Circling back on", "Sharing an update on",
            "Some thoughts on next steps for"]
_CLOSERS = ["Let me know if Thursday works for a call.", "Happy to walk your team through it.",
            "I have attached the latest version for review.", "Looking forward to your feedback.",
            "Can you confirm who else should be involved?"]
_REPLIES = ["Thanks, this is helpful.", "Got it, I will share this internally.", "Sounds good, let's do that.",
            "Could you send over the updated numbers?", "Adding my colleague for visibility."]
_INTERNAL_SUBJECTS = ["Discount approval", "Forecast update", "PTO next Friday", "Territory question",
                      "Expense report", "Coaching notes", "Quick question", "Handoff notes",
                      "Demo environment access", "Customer reference request", "Lunch & learn", "Swap coverage"]
_LEAD_SUBJECTS = ["Quarterly targets", "Headcount plan", "Comp plan review", "Board deck numbers",
                  "Hiring pipeline"]
_NEWSLETTERS = [("SaaS Weekly", "news@saasweekly.example", "CATEGORY_PROMOTIONS"),
                ("Revenue Ops Digest", "digest@revopsdigest.example", "CATEGORY_UPDATES"),
                ("Sales Leadership Forum", "events@salesforum.example", "CATEGORY_PROMOTIONS"),
                ("LinkedIn", "notifications@linkedin-mail.example", "CATEGORY_UPDATES"),
                ("Northwind IT", "it-notices@northwind-alerts.example", "CATEGORY_UPDATES"),
                ("Travel Desk", "bookings@travel-desk.example", "CATEGORY_UPDATES")]
_HEADLINES = ["5 ways to shorten your sales cycle", "Pipeline hygiene for Q-end", "Webinar: forecasting that works",
              "New connections this week", "Your weekly digest", "Password expiry reminder",
              "Itinerary update", "The state of B2B buying"]
_PERSONAL_SUBJECTS = ["Dinner on Saturday?", "Photos from the trip", "Happy birthday!", "Soccer practice schedule",
                      "Apartment viewing", "Book club", "Weekend plans", "Re: catching up"]


class _Mail:
    """One real-world email. People are (display name, address, _User or None for outsiders)."""
    __slots__ = ("key", "t", "sender", "to", "cc", "subject", "body", "thread", "truth", "logged",
                 "mid", "in_reply_to", "references")

    def __init__(self, key, t, sender, to, cc, subject, body, thread, truth, logged=None):
        self.key, self.t, self.sender, self.to, self.cc = key, t, sender, to, cc
        self.subject, self.body, self.thread, self.truth, self.logged = subject, body, thread, truth, logged
        self.mid = self.in_reply_to = self.references = None


def _me(u: _User) -> tuple:
    return (_user_name(u), u.email, u)


def _fmt(p: tuple) -> str:
    return f"{p[0]} <{p[1]}>"


def history_id(t: int) -> int:
    """The mailbox history id at wall ms t: rises strictly with time, in every mailbox."""
    return t - _HIST_T0


def _thread_up(mails: list[_Mail], seed: int) -> list[_Mail]:
    """Sorts by (thread, time) and sets Message-ID, In-Reply-To and References."""
    mails.sort(key=lambda m: (m.thread, m.t))
    prev = None
    for m in mails:
        domain = "mail.gmail.com" if m.sender[2] is not None else m.sender[1].partition("@")[2]
        m.mid = f"<{_digest(seed, 'mid', m.key).hex()[:24]}@{domain}>"
        if prev is not None and prev.thread == m.thread:
            m.in_reply_to = prev.mid
            m.references = f"{prev.references} {prev.mid}" if prev.references else prev.mid
        prev = m
    return mails


class GmailView:
    """Renders the org's mailboxes; `org` is the SyntheticOrg."""

    def __init__(self, org):
        self.org = org
        self._touched = array("q", [-1]) * org._n_deals    # per deal: last add/delete of its mail
        weeks = (org._horizon_b - org._start_b) / _BWEEK
        # Deal intake per rep per week: non-deal mail scales with it, keeping the mix stable by size.
        self._load = org._n_deals / len(org._reps) / weeks
        self._week0 = org._start_b // _BWEEK

    def mailboxes(self) -> list[str]:
        return [u.email for u in self.org._users]

    def deal_ref(self, D: _Deal) -> tuple[str, str]:
        """The deal as the truth names it: (CRM, its id there)."""
        return ("salesforce", D.id) if D.i < self.org._n_sf else ("hubspot", deal_id(D.i))

    # ------------------------------------------------------------------ deal mail

    def deal_mails(self, D: _Deal, acts: list[tuple] | None = None) -> list[_Mail]:
        """The deal's mail: a thread per logged email activity (its first message is the logged
        one: `logged` = the activity's index), unlogged replies, and scheduling threads."""
        org = self.org
        acts = org._activities(D) if acts is None else acts
        contacts = org._contacts(D.account)
        by_id = {c.id: c for c in contacts}
        r = org._rng("gmail-deal", D.i)
        ref = self.deal_ref(D)
        out = []
        for j, a in enumerate(acts):
            if a[0] == "Task" and a[3] == "Email":
                out += self._email_thread(D, j, a, by_id[a[7]], contacts, r, ref)
            elif a[0] == "Event" and r.random() < _P_SCHEDULING:
                out += self._scheduling_thread(D, j, a, by_id[a[5]], r, ref)
        return _thread_up(out, org.seed)

    def _email_thread(self, D, j, a, c, contacts, r, ref) -> list[_Mail]:
        t, rep = a[1], a[8]
        topic = a[4].removeprefix("Email: ")
        incoming = r.random() < _P_INCOMING
        personal = incoming and r.random() < _P_PERSONAL_ADDRESS
        address = _personal_email(self.org.seed, c.first, c.last, c.n) if personal else c.email
        them, me = (f"{c.first} {c.last}", address, None), _me(rep)
        cc = []
        if r.random() < _P_CC_MANAGER and rep.manager is not None:
            cc.append(_me(rep.manager))
        if r.random() < _P_CC_CONTACT:
            others = [x for x in contacts if x.created <= t and x is not c]
            if others:
                x = r.choice(others)
                cc.append((f"{x.first} {x.last}", x.email, None))
        u = r.random()
        n_replies = 0 if u < 0.55 else 1 if u < 0.88 else 2
        truth = {"kind": "deal", "deal": ref, "personal_address": personal}
        thread = f"d{D.i}.{j}"
        sender, rcpt = (them, me) if incoming else (me, them)
        body = self._deal_body(r, sender, rcpt, D, topic)
        mails = [_Mail(f"{thread}.0", t, sender, [rcpt], cc, topic, body, thread, truth, logged=j)]
        b = _biz(t)
        for k in range(n_replies):
            b += min(_lognorm_bdays(r, 0.35, 1.0), 6 * _BDAY)
            tk = _wall(b)
            if not rep.active_at(tk):
                break
            sender, rcpt = rcpt, sender
            body = f"Hi {rcpt[0].split()[0]},\n\n{r.choice(_REPLIES)} Re {D.name}.\n\n{sender[0].split()[0]}"
            mails.append(_Mail(f"{thread}.{k + 1}", tk, sender, [rcpt], cc, "Re: " + topic, body, thread, truth))
        return mails

    def _scheduling_thread(self, D, j, a, c, r, ref) -> list[_Mail]:
        """The unlogged back-and-forth that set a meeting up, just before it went in the calendar."""
        created, rep = a[1], a[6]
        t0 = _wall(_biz(created) - int(r.uniform(0.05, 0.6) * _BDAY))
        reply = r.random() < 0.7
        if t0 <= D.created:
            return []
        topic = a[4].removeprefix("Meeting: ")
        truth = {"kind": "deal", "deal": ref, "personal_address": False}
        me, them = _me(rep), (f"{c.first} {c.last}", c.email, None)
        thread = f"d{D.i}.s{j}"
        body = (f"Hi {c.first},\n\nWould you have time for a {topic} on {D.name} this week? "
                f"Tuesday or Wednesday afternoon would work on our side.\n\nBest,\n{rep.first}")
        mails = [_Mail(f"{thread}.0", t0, me, [them], [], f"Scheduling: {topic}", body, thread, truth)]
        if reply:
            t1 = t0 + int(r.uniform(0.2, 0.9) * (created - t0))
            body = f"Hi {rep.first},\n\nWednesday works, please send an invite for {D.name}.\n\n{c.first}"
            mails.append(_Mail(f"{thread}.1", t1, them, [me], [], f"Re: Scheduling: {topic}", body, thread, truth))
        return mails

    @staticmethod
    def _deal_body(r, sender, rcpt, D: _Deal, topic: str) -> str:
        return (f"Hi {rcpt[0].split()[0]},\n\n{r.choice(_OPENERS)} {D.name} ({topic}). "
                f"{r.choice(_CLOSERS)}\n\nBest,\n{sender[0].split()[0]}")

    # ------------------------------------------------------------------ weekly mail

    def _week_mails(self, w: int) -> list[_Mail]:
        """Internal, newsletter and personal mail of business week w (replies may spill over)."""
        org = self.org
        out = []
        for m in org._managers:
            out += self._team_week(m, w)
        out += self._leadership_week(w)
        for u in org._users:
            out += self._inbox_week(u, w)
        return _thread_up([m for m in out if m.t >= org._start], org.seed)

    def _at(self, r, w: int, lo: float = 0.0, hi: float = 5.0) -> int | None:
        """A business moment in week w (days lo..hi of its five); None on a holiday."""
        b = w * _BWEEK + int(r.uniform(lo, hi) * _BDAY)
        return None if _bdate(b) in _HOLIDAYS else _wall(b)

    def _replies(self, r, first: _Mail, people: list[tuple], p: float, key: str) -> list[_Mail]:
        """Replies to `first` from some of `people` (each with probability p), to its sender."""
        out = []
        b = _biz(first.t)
        for n, person in enumerate(people):
            if r.random() >= p:
                continue
            tk = _wall(b + min(_lognorm_bdays(r, 0.3, 1.0), 4 * _BDAY))
            if person[2] is not None and not person[2].active_at(tk):
                continue
            body = f"Hi {first.sender[0].split()[0]},\n\n{r.choice(_REPLIES)}\n\n{person[0].split()[0]}"
            out.append(_Mail(f"{key}.r{n}", tk, person, [first.sender], [], "Re: " + first.subject, body,
                             first.thread, first.truth))
        return out

    def _team_week(self, mgr: _User, w: int) -> list[_Mail]:
        org = self.org
        r = org._rng("gmail-team", mgr.n, w)
        internal = {"kind": "internal", "deal": None, "personal_address": False}
        start = _wall(w * _BWEEK)
        team = [u for u in org._reps if u.team == mgr.team and u.active_at(start)]
        out = []
        t = self._at(r, w, 0.0, 0.3)
        if t is not None and team and w % 2 == mgr.n % 2:      # fortnightly
            cc = [_me(org._vp)] if r.random() < 0.3 else []
            key = f"w{w}.m{mgr.n}.review"
            subject = f"Pipeline review – week of {_dt(start):%b %d}"
            body = (f"Team,\n\nPlease update stages, amounts and close dates before Thursday's forecast call. "
                    f"Flag anything that slipped.\n\n{mgr.first}")
            first = _Mail(key, t, _me(mgr), [_me(u) for u in team], cc, subject, body, key, internal)
            out += [first] + self._replies(r, first, [_me(u) for u in team], 0.1, key)
        for rep in team:
            for k in range(_poisson(r, 0.25 * self._load)):
                t = self._at(r, w)
                mate = r.choice(team)
                if t is None or not rep.active_at(t):
                    continue
                to = mgr if r.random() < 0.6 or mate is rep else mate
                sender, rcpt = (rep, to) if r.random() < 0.6 else (to, rep)
                key = f"w{w}.u{rep.n}.{k}"
                subject = r.choice(_INTERNAL_SUBJECTS)
                body = f"Hi {rcpt.first},\n\n{subject} – do you have a minute today?\n\n{sender.first}"
                first = _Mail(key, t, _me(sender), [_me(rcpt)], [], subject, body, key, internal)
                out += [first] + self._replies(r, first, [_me(rcpt)], 0.6, key)
        return out

    def _leadership_week(self, w: int) -> list[_Mail]:
        org = self.org
        r = org._rng("gmail-lead", w)
        internal = {"kind": "internal", "deal": None, "personal_address": False}
        vp, managers = org._vp, [_me(m) for m in org._managers]
        out = []
        t = self._at(r, w, 3.5, 4.5)
        if t is not None:
            key = f"w{w}.vp.rollup"
            first = _Mail(key, t, _me(vp), managers, [], f"Forecast roll-up – week {w - self._week0 + 1}",
                          f"Managers,\n\nPlease send your commit and best case by Friday noon.\n\n{vp.first}",
                          key, internal)
            out += [first] + self._replies(r, first, managers, 0.3, key)
        for k in range(_poisson(r, 0.1 * self._load * len(managers))):
            t = self._at(r, w)
            if t is None:
                continue
            m = r.choice(managers)
            sender, rcpt = (_me(vp), m) if r.random() < 0.5 else (m, _me(vp))
            key = f"w{w}.vp.{k}"
            subject = r.choice(_LEAD_SUBJECTS)
            first = _Mail(key, t, sender, [rcpt], [], subject,
                          f"Hi {rcpt[0].split()[0]},\n\n{subject}: can we discuss on Monday?\n\n{sender[0].split()[0]}",
                          key, internal)
            out += [first] + self._replies(r, first, [rcpt], 0.5, key)
        return out

    def _inbox_week(self, u: _User, w: int) -> list[_Mail]:
        """Newsletters and personal mail reaching one mailbox in week w."""
        org = self.org
        r = org._rng("gmail-inbox", u.n, w)
        week_start = _wall(w * _BWEEK) - 13 * _HOUR       # Monday 00:00 UTC
        me, out = _me(u), []
        for k in range(_poisson(r, 1.0 * self._load)):
            name, address, category = r.choice(_NEWSLETTERS)
            t = week_start + r.randrange(5) * _DAY + 11 * _HOUR + r.randrange(60) * _MIN
            headline = r.choice(_HEADLINES)
            key = f"w{w}.n{u.n}.{k}"
            truth = {"kind": "newsletter", "deal": None, "personal_address": False, "category": category}
            body = f"{headline}\n\nRead this week's issue online. You are receiving this because you subscribed."
            out.append(_Mail(key, t, (name, address, None), [me], [], f"{name}: {headline}", body, key, truth))
        for k in range(_poisson(r, 0.25 * self._load)):
            friend = self._friend(u, r.randrange(_FRIENDS))
            first = friend[0].split()[0]
            t = week_start + r.randrange(7 * _DAY)
            key = f"w{w}.p{u.n}.{k}"
            subject = r.choice(_PERSONAL_SUBJECTS)
            truth = {"kind": "personal", "deal": None, "personal_address": False}
            mail = _Mail(key, t, friend, [me], [], subject, f"Hey {u.first},\n\n{subject}\n\n{first}", key, truth)
            out.append(mail)
            if r.random() < 0.3:
                out.append(_Mail(key + ".r", t + r.randrange(1, 30) * _HOUR, me, [friend], [], "Re: " + subject,
                                 f"Sounds great!\n\n{u.first}", key, truth))
        return [m for m in out if u.active_at(m.t) or m.sender[2] is None]

    def _friend(self, u: _User, k: int) -> tuple:
        """One of the few people who write to the user privately (stable over time)."""
        h = _digest(self.org.seed, "friend", u.n, k)
        first, last = _FIRST[h[0] % len(_FIRST)], _LAST[h[1] % len(_LAST)]
        return f"{first} {last}", _personal_email(self.org.seed, first, last, f"friend:{u.n}:{k}"), None

    # ------------------------------------------------------------------ copies and streams

    def _copies(self, mails: list[_Mail]) -> Iterator[tuple[_Mail, _User, str, str, int | None]]:
        """(mail, mailbox owner, id, threadId, deleted ms|None) for every mailbox copy, in
        thread-then-time order (mails come sorted by _thread_up)."""
        seed = self.org.seed
        first_ids: dict[tuple[str, str], str] = {}
        for m in mails:
            seen = set()
            for person in [m.sender, *m.to, *m.cc]:
                u = person[2]
                if u is None or u.email in seen or not u.active_at(m.t):
                    continue
                seen.add(u.email)
                h = _digest(seed, "gmail", m.key, u.email)
                mid = f"{(m.t << 20) | (int.from_bytes(h[:3], 'big') & 0xFFFFF):016x}"
                thread_id = first_ids.setdefault((m.thread, u.email), mid)
                deleted = None
                kind = m.truth["kind"]
                if int.from_bytes(h[3:7], "big") < _P_DELETE[kind] * 2 ** 32:
                    x = int.from_bytes(h[7:11], "big") / 2 ** 32
                    deleted = m.t + int((0.05 + (_MAX_DELETE_DAYS - 0.05) * x * x) * _DAY)
                    if u.deactivated is not None and deleted >= u.deactivated:
                        deleted = None
                yield m, u, mid, thread_id, deleted

    @staticmethod
    def _message(m: _Mail, u: _User, mid: str, thread_id: str, deleted: int | None, t: int) -> dict:
        sent = m.sender[2] is u
        if sent:
            labels = ["SENT"]
        elif m.truth["kind"] == "newsletter":
            labels = ["INBOX", "UNREAD", m.truth["category"]]
        else:
            labels = ["INBOX", "CATEGORY_PERSONAL"]
        headers = [{"name": "From", "value": _fmt(m.sender)},
                   {"name": "To", "value": ", ".join(_fmt(p) for p in m.to)}]
        if m.cc:
            headers.append({"name": "Cc", "value": ", ".join(_fmt(p) for p in m.cc)})
        headers += [{"name": "Subject", "value": m.subject},
                    {"name": "Date", "value": format_datetime(_dt(m.t))},
                    {"name": "Message-ID", "value": m.mid}]
        if m.in_reply_to:
            headers += [{"name": "In-Reply-To", "value": m.in_reply_to},
                        {"name": "References", "value": m.references}]
        gone = deleted is not None and deleted <= t
        truth = {k: v for k, v in m.truth.items() if k != "category"}
        return {"id": mid, "threadId": thread_id, "labelIds": labels, "snippet": " ".join(m.body.split())[:100],
                "internalDate": _dt(m.t), "historyId": history_id(m.t), "headers": headers, "body": m.body,
                "sizeEstimate": 1200 + len(m.body) + sum(len(h["value"]) + len(h["name"]) + 4 for h in headers),
                "deletedAt": _dt(deleted) if gone else None, "deletedHistoryId": history_id(deleted) if gone else None,
                "truth": truth}

    def _render(self, mails: list[_Mail], t: int, since: int | None):
        """Copies that exist at t, or (with since) those added or deleted in (since, t]; and the
        last add/delete moment of the unit."""
        last = 0
        out = []
        for m, u, mid, thread_id, deleted in self._copies(mails):
            last = max(last, m.t, deleted or 0)
            if m.t > t:
                continue
            if since is None or m.t > since or (deleted is not None and since < deleted <= t):
                out.append((u.email, self._message(m, u, mid, thread_id, deleted, t)))
        return out, last

    def stream(self, t: int, since: int | None) -> Iterator[tuple[str, dict]]:
        org = self.org
        for D in org._deals_upto(t, since, touched=self._touched):
            out, last = self._render(self.deal_mails(D), t, since)
            self._touched[D.i] = last
            yield from out
        if t < org._start:
            return
        # Weekly units: a week's mail is added within ~5 weeks of its start (replies spill over)
        # and deleted within _MAX_DELETE_DAYS after that.
        first = self._week0
        if since is not None:
            first = max(first, _biz(since - (_MAX_DELETE_DAYS + 35) * _DAY) // _BWEEK)
        for w in range(first, _biz(t) // _BWEEK + 1):
            yield from self._render(self._week_mails(w), t, since)[0]

