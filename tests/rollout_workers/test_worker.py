import pytest
import torch

from envs import Catalog, WebShopEnv
from envs.generate import GeneratorConfig, write_catalog
from envs.search import SearchIndex
from policies.policy import Policy, PolicyConfig
from policies.candidates import build_candidates, policy_state
from rollout_workers.recording import record_episode
from rollout_workers.pairs import first_noop_step, lacks_wanted_option, over_budget
from rollout_workers.worker import RolloutWorker, WorkerConfig
from envs.agents import BuyHereAgent, ExpertAgent
from policies.search_queries import search_queries


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    cat = Catalog.from_dir(write_catalog(GeneratorConfig(size=200, seed=7), tmp_path_factory.mktemp("c")))
    return cat, SearchIndex(cat)


@pytest.fixture
def policy():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    return Policy(PolicyConfig(model="tiny"))


def test_candidates_name_products_and_expand_search(gen):
    cat, idx = gen
    env = WebShopEnv(catalog=cat, search_index=idx)
    obs, info = env.reset(options={"goal_id": 0})
    c = build_candidates(env, info["available_actions"])
    assert c.texts == [f"search[{q}]" for q in search_queries(env.session.goal.instruction_text)]
    obs, *_, info = env.step(c.actions[0])
    c = build_candidates(env, info["available_actions"])
    first = next(i for i, a in enumerate(c.actions) if a not in ("click[back to search]", "click[next >]"))
    asin = c.actions[first][len("click["):-1].upper()
    product = cat.by_asin[asin]
    limit = env.session.goal.price_upper
    note = ("within budget" if max(product.pricing) <= limit else
            "over budget" if min(product.pricing) > limit else "partly over budget")
    tail = f"{product.title.lower()} - {product.price_tag.lower()} - {note}"
    assert c.texts[first] == f"click[item - {tail}]"
    assert c.index_of_action(c.actions[first].upper()) == first
    # once opened, the product is no longer offered on the results page; the rest are, in order
    env.step(c.actions[first])
    obs, *_, info = env.step("click[< prev]")
    again = build_candidates(env, info["available_actions"])
    assert c.actions[first] in info["available_actions"] and c.actions[first] not in again.actions
    assert again.texts == [t for i, t in enumerate(c.texts) if i != first]
    assert again.actions == [a for i, a in enumerate(c.actions) if i != first]


def test_expert_recording_replays_to_the_same_score(gen):
    cat, idx = gen
    env = WebShopEnv(catalog=cat, search_index=idx)
    for g in range(5):
        t = record_episode(env, ExpertAgent(search_queries), g)
        t.validate()
        assert t.score == 1.0 and t.terminated and t.source == "expert"
        # replaying the chosen candidates' env actions reproduces the episode
        obs, info = env.reset(options={"goal_id": g})
        for state, texts, i in zip(t.states, t.candidates, t.chosen):
            assert policy_state(env, obs) == state
            cands = build_candidates(env, info["available_actions"], extra_searches=())
            action = cands.actions[i] if i < len(cands.actions) else texts[i]
            obs, r, term, trunc, info = env.step(action)
        assert r == t.score


def test_worker_batches_envs_and_records_everything(gen, policy):
    cat, idx = gen
    w = RolloutWorker(3, cat, policy, WorkerConfig(num_envs=4, max_steps=6, pair_mode="expert"), seed=1,
                      search_index=idx)
    calls = []
    real_act = policy.act
    policy.act = lambda states, cands, **kw: calls.append(len(states)) or real_act(states, cands, **kw)
    batch = w.sample(6)
    assert len(batch.trajectories) == 6 and max(calls) == 4  # one call for all live envs
    assert batch.env_steps == sum(t.num_steps for t in batch.trajectories) == sum(calls)
    for t in batch.trajectories:
        t.validate()
        assert t.worker_id == 3 and t.source == "policy" and len(t.values) == t.num_steps
        assert t.terminated or (t.truncated and t.num_steps == 6)
        assert all(lp <= 0 for lp in t.logp)
    for chosen, rejected, mode in batch.pairs:
        assert mode == "expert" and chosen.goal_id == rejected.goal_id
        assert chosen.score - rejected.score >= 0.1
    # a random tiny policy rarely succeeds: the expert beats most of its episodes
    assert len(batch.pairs) >= 3


def test_self_pairs_and_resume_of_goal_order(gen, policy):
    cat, idx = gen
    cfg = WorkerConfig(num_envs=4, max_steps=5, pair_mode="self", samples_per_goal=4, pair_margin=0.0)
    w = RolloutWorker(0, cat, policy, cfg, seed=2, search_index=idx)
    batch = w.sample(8)
    goals = [t.goal_id for t in batch.trajectories]
    assert len(set(goals)) == 2  # two goals, four samples each
    assert all(m == "self" and c.score >= r.score for c, r, m in batch.pairs)
    state = w.state()
    w2 = RolloutWorker(0, cat, policy, cfg, seed=2, search_index=idx)
    w2.load_state(state)
    assert w2._next_goal() == w._next_goal()


def test_worker_config_errors():
    with pytest.raises(ValueError, match="pair_mode must be one of"):
        WorkerConfig(pair_mode="best")
    with pytest.raises(ValueError, match="samples_per_goal >= 2"):
        WorkerConfig(pair_mode="self")


def test_budget_note_reads_the_instructions_price_clause():
    from policies.candidates import budget_note, price_limit

    assert price_limit("red shoes, and price lower than 70.00 dollars") == 70.0
    assert price_limit("a tv, and price lower than 1,200.50 dollars") == 1200.5
    assert price_limit("red shoes") is None
    assert budget_note([41.49, 52.28], 70.0) == "within budget"
    assert budget_note([70.0], 70.0) == "within budget"  # the reward's test is price <= limit
    assert budget_note([88.49, 132.0], 70.0) == "over budget"
    assert budget_note([60.0, 80.0], 70.0) == "partly over budget"
    assert budget_note([60.0], None) is None


def test_correct_mode_pairs_share_the_prefix_up_to_the_cut(gen, policy):
    cat, idx = gen
    cfg = WorkerConfig(num_envs=4, pair_mode="correct", pair_margin=0.1)
    w = RolloutWorker(0, cat, policy, cfg, seed=3, search_index=idx)
    batch = w.sample(12)
    assert batch.pairs, "an untrained policy fails often enough to be corrected"
    for chosen, rejected, mode in batch.pairs:
        assert mode == "correct" and chosen.source == "expert" and rejected.source == "policy"
        assert chosen.goal_id == rejected.goal_id and chosen.seed == rejected.seed
        assert chosen.score - rejected.score >= 0.1
        chosen.validate()
        # the two halves agree step for step up to where they part, and differ there
        cut = next(t for t in range(len(chosen.chosen))
                   if t >= len(rejected.chosen)
                   or chosen.candidates[t][chosen.chosen[t]] != rejected.candidates[t][rejected.chosen[t]])
        assert chosen.states[:cut] == rejected.states[:cut]
        assert chosen.logp[:cut] == rejected.logp[:cut]
        assert all(lp == 0.0 for lp in chosen.logp[cut:])  # the expert's steps
    from rollout_workers.schema import pairs_to_batch

    assert set(pairs_to_batch(batch.pairs).column("mode").to_pylist()) == {"correct"}


def test_first_cut_is_the_first_disagreement_with_the_expert(gen, policy):
    cat, idx = gen
    first_only = RolloutWorker(0, cat, policy, WorkerConfig(num_envs=1, correction_cuts=("first",)), search_index=idx)
    env = WebShopEnv(catalog=cat, search_index=idx)
    expert = ExpertAgent(search_queries)
    goal = next(g for g in cat.goal_ids("train") if cat.goals[g].goal_options)
    # follow the expert to the product page, then buy without choosing the options
    obs, info = env.reset(seed=5, options={"goal_id": goal})
    expert.reset(env)
    actions = []
    while info["page"] != "item":
        actions.append(expert.act(obs, info))
        obs, _, _, _, info = env.step(actions[-1])
    assert expert.act(obs, info) != "click[buy now]"
    actions.append("click[buy now]")
    traj = record_episode(env, _Replay(actions), goal, source="policy", seed=5)
    assert traj.terminated and traj.score < 1.0
    assert expert_cuts(first_only, traj, actions) == [len(actions) - 1]  # it disagrees at the purchase
    # a search the expert would not type disagrees at step 0
    obs, info = env.reset(seed=5, options={"goal_id": goal})
    expert.reset(env)
    queries = build_candidates(env, info["available_actions"]).actions
    acts = [next(a for a in queries if a != expert.act(obs, info))]
    obs, _, _, _, info = env.step(acts[0])
    acts.append(next(a for a in info["available_actions"] if a[len("click["):-1].upper() in cat.by_asin))
    acts.append("click[buy now]")
    traj2 = record_episode(env, _Replay(acts), goal, source="policy", seed=5)
    assert traj2.terminated
    assert expert_cuts(first_only, traj2, acts) == [0]
    # with the evidence cut, also the purchase, if the page lacks an option the goal asks for
    evidence = RolloutWorker(0, cat, policy, WorkerConfig(num_envs=1, correction_cuts=("first", "evidence")),
                             search_index=idx)
    bought = cat.by_asin[acts[1][len("click["):-1].upper()]
    offered = {v for values in bought.options.values() for v in values}
    lacking = any(w not in offered for w in cat.goals[goal].goal_options)
    assert expert_cuts(evidence, traj2, acts) == ([0, 2] if lacking else [0])
    with pytest.raises(ValueError, match=r"correction_cuts must be a list of \['budget', 'evidence', 'first', "
                                         r"'leave', 'noop'\], got \('last',\)"):
        WorkerConfig(correction_cuts=("last",))
    with pytest.raises(ValueError, match="correction_cuts must be a list of"):
        WorkerConfig(correction_cuts="evidence+noop")  # the old one-string form


def test_evidence_cuts_are_a_purchase_the_page_shows_wrong(gen, policy):
    cat, idx = gen
    w = RolloutWorker(0, cat, policy, WorkerConfig(num_envs=1, correction_cuts=("evidence",)),
                      search_index=idx)
    env = WebShopEnv(catalog=cat, search_index=idx)
    expert = ExpertAgent(search_queries)

    def lacks(asin, goal):
        offered = {v for values in cat.by_asin[asin].options.values() for v in values}
        return any(w not in offered for w in cat.goals[goal].goal_options)

    found = None
    for goal in cat.goal_ids("train"):
        obs, info = env.reset(seed=5, options={"goal_id": goal})
        expert.reset(env)
        search = expert.act(obs, info)
        obs, _, _, _, info = env.step(search)
        shown = [a for a in info["available_actions"] if a[len("click["):-1].upper() in cat.by_asin]
        wrong = [a for a in shown if lacks(a[len("click["):-1].upper(), goal)]
        right = [a for a in shown if not lacks(a[len("click["):-1].upper(), goal)]
        if wrong and right:
            found = goal, search, wrong[0], right[0]
            break
    assert found is not None
    goal, search, wrong, right = found
    # buying a product whose page lacks an asked-for option: the purchase (step 2) is cut
    acts = [search, wrong, "click[buy now]"]
    traj = record_episode(env, _Replay(acts), goal, source="policy", seed=5)
    assert traj.terminated and expert_cuts(w, traj, acts) == [2]
    assert "not offered." in traj.states[2].split(" [SEP] ")[0]  # the state names what is missing
    # buying a product whose page offers every asked-for option shows nothing wrong: no cut,
    # also after going back from the wrong one
    for acts in ([search, right, "click[buy now]"], [search, wrong, "click[< prev]", right, "click[buy now]"]):
        traj = record_episode(env, _Replay(acts), goal, source="policy", seed=5)
        assert traj.terminated and expert_cuts(w, traj, acts) == []
    # the correction at that purchase: the expert goes back instead
    acts = [search, wrong, "click[buy now]"]
    traj = record_episode(env, _Replay(acts), goal, source="policy", seed=5)
    pairs = w.pair_miner.corrections(traj, acts)
    assert len(pairs) == 1 and pairs[0][0].candidates[2][pairs[0][0].chosen[2]] == "click[< prev]"


def test_noop_cut_is_the_first_click_that_left_the_page_as_it_was(gen, policy):
    cat, idx = gen
    noop = RolloutWorker(0, cat, policy, WorkerConfig(num_envs=1, max_steps=8, correction_cuts=("evidence", "noop")),
                         search_index=idx)
    evidence = RolloutWorker(0, cat, policy, WorkerConfig(num_envs=1, correction_cuts=("evidence",)),
                             search_index=idx)
    env = WebShopEnv(catalog=cat, search_index=idx, max_steps=8)
    expert = ExpertAgent(search_queries)
    goal = next(g for g in cat.goal_ids("train") if cat.goals[g].goal_options)
    # the expert's own way to the product page and its first option click
    obs, info = env.reset(seed=5, options={"goal_id": goal})
    expert.reset(env)
    acts = []
    while not (acts and acts[-1] != "click[< prev]" and info["page"] == "item" and env.session.options):
        acts.append(expert.act(obs, info))
        obs, _, _, _, info = env.step(acts[-1])
    k = len(acts) - 1  # the option click
    # then the same click again until the steps run out: every repeat leaves the page as it was
    acts += [acts[k]] * (env.max_steps - len(acts))
    traj = record_episode(env, _Replay(acts), goal, source="policy", seed=5)
    assert not traj.terminated and traj.truncated and traj.score == 0.0
    assert traj.states[k + 1] != traj.states[k] and traj.states[k + 2] == traj.states[k + 1]
    assert first_noop_step(traj.states) == k + 1 and first_noop_step(traj.states[: k + 2]) is None
    assert expert_cuts(noop, traj, acts) == [k + 1]
    assert expert_cuts(evidence, traj, acts) == []  # a purchase-less episode has no evidence cut
    # the correction: the expert takes over at the first repeat, does something else and buys
    pairs = noop.pair_miner.corrections(traj, acts)
    assert len(pairs) == 1
    chosen, rejected, mode = pairs[0]
    assert rejected is traj and mode == "correct" and chosen.terminated and chosen.score > 0.0
    assert chosen.chosen[: k + 1] == traj.chosen[: k + 1]
    assert chosen.candidates[k + 1][chosen.chosen[k + 1]] != acts[k]


def test_budget_cut_takes_the_purchase_of_a_product_the_price_note_marks_over_budget(gen, policy):
    cat, idx = gen
    budget = RolloutWorker(0, cat, policy, WorkerConfig(num_envs=1, correction_cuts=("evidence", "noop", "budget")),
                           search_index=idx)
    noop = RolloutWorker(0, cat, policy, WorkerConfig(num_envs=1, correction_cuts=("evidence", "noop")),
                         search_index=idx)
    env = WebShopEnv(catalog=cat, search_index=idx)
    found = None
    for goal in cat.goal_ids("train"):
        if cat.goals[goal].goal_options:  # no option to miss: only the price is wrong
            continue
        obs, info = env.reset(seed=3, options={"goal_id": goal})
        expert = ExpertAgent(search_queries)
        expert.reset(env)
        search = expert.act(obs, info)
        obs, _, _, _, info = env.step(search)
        c = build_candidates(env, info["available_actions"])
        over = [a for t, a in zip(c.texts, c.actions) if t.endswith(" - over budget]")]
        if over:
            found = goal, search, over[0]
            break
    assert found is not None, "the test catalog has a results page with an over-budget product"
    goal, search, click = found
    acts = [search, click, "click[buy now]"]
    traj = record_episode(env, _Replay(acts), goal, source="policy", seed=3)
    assert traj.terminated and traj.reward_info["r_price"] is False
    assert traj.states[2].startswith("price over budget. [SEP] ")  # what the policy read before buying
    assert expert_cuts(budget, traj, acts) == [2]
    assert expert_cuts(noop, traj, acts) == []  # without "budget" the purchase is no cut
    # the correction: the expert takes over on the product page, does not buy it, and scores higher
    (chosen, rejected, mode), = budget.pair_miner.corrections(traj, acts)
    assert rejected is traj and mode == "correct" and chosen.score - traj.score >= 0.1
    assert chosen.chosen[:2] == traj.chosen[:2] and chosen.states[2] == traj.states[2]
    assert chosen.candidates[2][chosen.chosen[2]] != "click[buy now]"


def expert_cuts(worker, traj, actions):
    """The steps where `worker`'s corrections hand `traj` over to the expert."""
    return [step for step, agent in worker.pair_miner.cut_steps(traj, actions) if agent is not BuyHereAgent]


def leave_cuts(worker, traj, actions):
    """The steps where `worker`'s corrections hand `traj` over to `BuyHereAgent`."""
    return [step for step, agent in worker.pair_miner.cut_steps(traj, actions) if agent is BuyHereAgent]


class _Replay:
    """An agent that plays a fixed list of env actions."""

    def __init__(self, actions):
        self.actions = list(actions)

    def reset(self, env):
        self.t = 0

    def act(self, observation, info):
        self.t += 1
        return self.actions[self.t - 1]


def test_leave_cut_buys_the_first_product_left_showing_nothing_wrong_in_a_purchaseless_episode(gen, policy):
    cat, idx = gen
    leave = RolloutWorker(0, cat, policy, WorkerConfig(num_envs=1, max_steps=6), search_index=idx)
    budget = RolloutWorker(0, cat, policy, WorkerConfig(num_envs=1, max_steps=6,
                                                        correction_cuts=("evidence", "noop", "budget")),
                          search_index=idx)
    env = WebShopEnv(catalog=cat, search_index=idx, max_steps=6)

    def page_shows_wrong(goal, search, click) -> bool:
        env.reset(seed=2, options={"goal_id": goal})
        env.step(search)
        env.step(click)
        return lacks_wanted_option(env) or over_budget(env)

    found = None
    for goal in cat.goal_ids("train"):
        obs, info = env.reset(seed=2, options={"goal_id": goal})
        expert = ExpertAgent(search_queries)
        expert.reset(env)
        search = expert.act(obs, info)
        obs, _, _, _, info = env.step(search)
        shown = [a for a in info["available_actions"] if a[len("click["):-1].upper() in cat.by_asin]
        wrong = [a for a in shown if page_shows_wrong(goal, search, a)]
        fine = [a for a in shown if not page_shows_wrong(goal, search, a)]
        if wrong and len(fine) >= 2:
            found = goal, search, wrong[0], fine
            break
    assert found is not None
    goal, search, wrong, fine = found
    # leaving a page that shows something wrong is right; leaving fine[0]'s page (step 4) is
    # where the episode went wrong: it browsed on and ran out of steps without buying
    acts = [search, wrong, "click[< prev]", fine[0], "click[< prev]", fine[1]]
    traj = record_episode(env, _Replay(acts), goal, source="policy", seed=2)
    assert traj.truncated and not traj.terminated and traj.score == 0.0
    assert leave_cuts(leave, traj, acts) == [4] and expert_cuts(leave, traj, acts) == []
    assert budget.pair_miner.cut_steps(traj, acts) == []  # without the leave cut
    # the correction: BuyHereAgent buys fine[0] with the asked options instead of going back
    pairs = leave.pair_miner.corrections(traj, acts)
    assert len(pairs) == 1
    chosen, rejected, mode = pairs[0]
    assert rejected is traj and mode == "correct" and chosen.terminated and chosen.score >= 0.1
    assert chosen.chosen[:4] == traj.chosen[:4] and chosen.candidates[4][chosen.chosen[4]] != "click[< prev]"
    env.reset(seed=2, options={"goal_id": goal})
    for a in acts[:4]:
        env.step(a)
    bought = env.session.asin
    assert chosen.candidates[-1][chosen.chosen[-1]] == "click[buy now]" and fine[0] == f"click[{bought.lower()}]"
    env.reset(seed=2, options={"goal_id": goal})
    env.step(search)
    with pytest.raises(ValueError, match="takes over on a product page, not on the 'results' page"):
        BuyHereAgent().reset(env)
    # an episode that bought has no leave cut, even if it left a fine page on the way
    acts = [search, fine[0], "click[< prev]", fine[1], "click[buy now]"]
    traj = record_episode(env, _Replay(acts), goal, source="policy", seed=2)
    assert traj.terminated and leave_cuts(leave, traj, acts) == []
