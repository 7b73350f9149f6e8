//! Leaderboard-exact proposal (AR@AN, AUC) and detection (mAP) evaluation
