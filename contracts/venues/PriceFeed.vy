# pragma version 0.4.3
"""
@title PriceFeed
@custom:contract-name PriceFeed
@license MIT
@notice A Chainlink AggregatorV3-compatible USD price feed (8 decimals) whose answers are
        pushed by accounts holding `FEEDER_ROLE`. Each `set_price` starts a new round with
        `startedAt = updatedAt = block.timestamp` and `answeredInRound = roundId`, exactly
        what a consumer of a real Chainlink feed reads. Staleness is the consumer's check,
        as with Chainlink: the feed keeps returning its last answer.
"""

from ethereum.ercs import IERC165
implements: IERC165

from snekmate.auth.interfaces import IAccessControl
implements: IAccessControl

from ..interfaces import IAggregatorV3
implements: IAggregatorV3

from snekmate.auth import access_control
initializes: access_control

exports: access_control.__interface__


# ============================================================================
#                                  CONSTANTS
# ============================================================================

# @dev The role allowed to push answers.
FEEDER_ROLE: public(constant(bytes32)) = keccak256("FEEDER_ROLE")

# @dev Chainlink USD feeds answer with 8 decimals.
decimals: public(constant(uint8)) = 8

# @dev Chainlink's current aggregator interface version.
version: public(constant(uint256)) = 4


# ============================================================================
#                                  STORAGE
# ============================================================================

# @dev A round packed in one word, so reading the latest costs one storage slot
#      (Chainlink's aggregators pack theirs too): answer (> 0, bits 0-111), `updated_at`
#      (= `started_at`, 112-175), round id (176-255).
_ANSWER_MASK: constant(uint256) = 2**112 - 1
_TIME_MASK: constant(uint256) = 2**64 - 1


# @dev Human-readable pair, e.g. "ETH / USD".
description: public(immutable(String[64]))

# @dev The latest round's word (also in `_rounds`); rounds are numbered from 1.
_latest: uint256

# @dev Every round's word, by round id.
_rounds: HashMap[uint80, uint256]


# ============================================================================
#                                   EVENTS
# ============================================================================

# @dev Chainlink's `AnswerUpdated`, emitted on every new answer.
event AnswerUpdated:
    current: indexed(int256)
    roundId: indexed(uint256)
    updatedAt: uint256


# @dev Chainlink's `NewRound`, emitted when a round starts.
event NewRound:
    roundId: indexed(uint256)
    startedBy: indexed(address)
    startedAt: uint256


# ============================================================================
#                                CONSTRUCTOR
# ============================================================================

@deploy
def __init__(description_: String[64], initial_answer: int256):
    """
    @dev The deployer gets `DEFAULT_ADMIN_ROLE` and `FEEDER_ROLE`; round 1 holds
         `initial_answer`, so the feed never reports "no data".
    @param description_ The pair, e.g. "ETH / USD".
    @param initial_answer The first answer, 8 decimals, > 0.
    """
    access_control.__init__()
    access_control._grant_role(FEEDER_ROLE, msg.sender)
    description = description_
    self._set_price(initial_answer)


# ============================================================================
#                                   FEEDER
# ============================================================================

@external
def set_price(answer: int256):
    """
    @dev Starts a new round with `answer`, timestamped now. Only `FEEDER_ROLE`.
    @param answer The price in USD with 8 decimals; must be > 0.
    """
    access_control._check_role(FEEDER_ROLE, msg.sender)
    self._set_price(answer)


# ============================================================================
#                                    VIEW
# ============================================================================

@external
@view
def latestRoundData() -> (uint80, int256, uint256, uint256, uint80):
    """
    @dev Chainlink's latest round.
    @return (uint80, int256, uint256, uint256, uint80) roundId, answer (8 decimals),
            startedAt, updatedAt, answeredInRound.
    """
    return self._unpack(self._latest)


@external
@view
def getRoundData(_roundId: uint80) -> (uint80, int256, uint256, uint256, uint80):
    """
    @dev A past round; reverts with "feed: no data present" for unknown rounds (a
         Chainlink aggregator says "No data present").
    @param _roundId The round id, 1 ..= latest_round.
    @return (uint80, int256, uint256, uint256, uint80) roundId, answer (8 decimals),
            startedAt, updatedAt, answeredInRound.
    """
    assert _roundId != 0 and convert(_roundId, uint256) <= self._latest >> 176, "feed: no data present"
    return self._unpack(self._rounds[_roundId])


@external
@view
def latest_round() -> uint80:
    """
    @dev Id of the latest round; rounds are numbered from 1.
    @return uint80 The round id.
    """
    return convert(self._latest >> 176, uint80)


@external
@view
def latestAnswer() -> int256:
    """
    @dev The latest answer (Chainlink's legacy v2 getter).
    @return int256 The answer, 8 decimals.
    """
    return convert(self._latest & _ANSWER_MASK, int256)


# ============================================================================
#                                  INTERNAL
# ============================================================================

@internal
def _set_price(answer: int256):
    """
    @dev Starts a new round with `answer`, timestamped now, and logs `NewRound` and
         `AnswerUpdated`; the constructor (round 1) and `set_price` both come here.
    @param answer The price in USD with 8 decimals; > 0 and below 2**112.
    """
    assert answer > 0, "feed: answer must be positive"
    assert answer <= convert(_ANSWER_MASK, int256), "feed: answer too large"
    round_id: uint80 = convert(self._latest >> 176, uint80) + 1
    word: uint256 = convert(answer, uint256) | (block.timestamp << 112) | (convert(round_id, uint256) << 176)
    self._latest = word
    self._rounds[round_id] = word
    log NewRound(roundId=convert(round_id, uint256), startedBy=msg.sender, startedAt=block.timestamp)
    log AnswerUpdated(current=answer, roundId=convert(round_id, uint256), updatedAt=block.timestamp)


@internal
@pure
def _unpack(word: uint256) -> (uint80, int256, uint256, uint256, uint80):
    """
    @dev Unpacks a round word into Chainlink's round tuple.
    @param word A round word: answer | updated_at << 112 | round id << 176.
    @return (uint80, int256, uint256, uint256, uint80) roundId, answer, startedAt,
            updatedAt, answeredInRound.
    """
    round_id: uint80 = convert(word >> 176, uint80)
    updated_at: uint256 = (word >> 112) & _TIME_MASK
    return (round_id, convert(word & _ANSWER_MASK, int256), updated_at, updated_at, round_id)
